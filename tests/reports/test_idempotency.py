"""Idempotency-Key and client_report_id: a retry answers the first answer and stores nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from app.idempotency.models import IdempotencyKey
from app.idempotency.service import request_hash
from app.reports.schemas import ReportIn
from app.reports.service import canonical
from tests.conftest import Harness
from tests.factories import (
    REPORT_TABLES,
    bearer,
    count_rows,
    load_grid,
    login_headers,
    make_user,
    report_body,
)

PROBLEMS = "https://burnban.dev/problems/"


async def test_retry_with_the_same_key_replays_the_first_answer(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    headers["Idempotency-Key"] = "phone-42-report-7"
    first = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert first.status_code == 201, first.text
    before = await count_rows(harness, *REPORT_TABLES)
    harness.clock.advance(timedelta(minutes=3))
    again = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == first.json()
    assert await count_rows(harness, *REPORT_TABLES) == before


async def test_client_report_id_is_a_key_too(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    body = report_body(client_report_id="0f6e-uuid")
    first = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    again = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["client_report_id"] == "0f6e-uuid"
    assert (await count_rows(harness, "reports"))["reports"] == 1


async def test_the_same_instant_written_differently_is_the_same_body(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    headers["Idempotency-Key"] = "k"
    body = report_body(observed_at="2026-11-20T09:50:00+08:00")
    first = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    body = report_body(observed_at="2026-11-20T01:50:00Z")
    del body["location"]["crs"]  # the default
    again = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]


async def test_the_same_key_with_another_body_is_refused(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    headers["Idempotency-Key"] = "k"
    await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    before = await count_rows(harness, *REPORT_TABLES)
    other = report_body(description="换了内容")
    r = await harness.client.post("/api/v1/reports", json=other, headers=headers)
    assert r.status_code == 422
    assert r.json()["type"] == PROBLEMS + "idempotency-mismatch"
    assert await count_rows(harness, *REPORT_TABLES) == before


async def test_a_retry_is_answered_even_when_the_request_would_now_be_refused(
    harness: Harness,
) -> None:
    """The first answer stands: a retry after observed_at has aged past 30 days replays it."""
    await load_grid(harness)
    worker = await make_user(harness, "grid_worker")
    headers = bearer(harness, worker) | {"Idempotency-Key": "late-retry"}
    body = report_body(observed_at=(harness.clock.now() - timedelta(days=29)).isoformat())
    first = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert first.status_code == 201, first.text
    harness.clock.advance(timedelta(days=2))
    headers = bearer(harness, worker) | {"Idempotency-Key": "late-retry"}  # a fresh token
    again = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Without the key, the same body is refused now, and stores nothing.
    before = await count_rows(harness, *REPORT_TABLES)
    del headers["Idempotency-Key"]
    refused = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert refused.status_code == 422
    assert await count_rows(harness, *REPORT_TABLES) == before


async def test_a_refused_request_leaves_its_key_unused(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    headers["Idempotency-Key"] = "fix-and-retry"
    bad = report_body(material="plastic")  # not one of open_burning's materials
    refused = await harness.client.post("/api/v1/reports", json=bad, headers=headers)
    assert refused.status_code == 422
    assert (await count_rows(harness, "idempotency_keys"))["idempotency_keys"] == 0
    fixed = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers


async def test_keys_belong_to_their_caller(harness: Harness) -> None:
    await load_grid(harness)
    one = bearer(harness, await make_user(harness, "grid_worker", username="one"))
    two = bearer(harness, await make_user(harness, "grid_worker", username="two"))
    body = report_body(client_report_id="same")
    first = await harness.client.post("/api/v1/reports", json=body, headers=one)
    second = await harness.client.post("/api/v1/reports", json=body, headers=two)
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    # Same fire, same time: the second report joins the first one's incident.
    assert second.json()["incident"]["id"] == first.json()["incident"]["id"]
    assert second.json()["incident"]["is_new"] is False


async def test_a_key_still_in_flight_is_a_conflict(harness: Harness) -> None:
    await load_grid(harness)
    user = await make_user(harness, "grid_worker")
    body = report_body()

    async with harness.db.write() as session:
        conn = await session.connection()
        await conn.execute(
            insert(IdempotencyKey.__table__).values(  # type: ignore[attr-defined]
                caller_kind="user",
                caller_id=user.id,
                key="busy",
                request_hash=request_hash(canonical(ReportIn.model_validate(body))),
                status="in_flight",
                created_at=harness.clock.now(),
            )
        )
    headers = {**bearer(harness, user), "Idempotency-Key": "busy"}
    r = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert r.status_code == 409
    assert r.json()["type"] == PROBLEMS + "conflict"
    assert (await count_rows(harness, "reports"))["reports"] == 0
