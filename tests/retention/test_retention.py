"""Retention: idempotency keys, finished webhook deliveries and rate-limit windows are deleted
once older than their settings say; what is younger, or still in use, is kept."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, update

from app.ratelimit import service as ratelimit
from app.retention import service as retention
from app.retention.service import Retention
from app.webhooks import fanout
from app.webhooks.models import PENDING, SUCCEEDED, WebhookAttempt, WebhookDelivery
from tests.conftest import Harness
from tests.factories import bearer, count_rows, load_grid, login_headers, make_user, report_body
from tests.webhooks.support import Reporter, subscribe

_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]


async def test_a_retry_inside_the_window_is_replayed_and_after_it_is_a_fresh_request(
    harness: Harness,
) -> None:
    h = harness
    kept = Retention(timedelta(days=2), timedelta(days=90), timedelta(days=1))
    await load_grid(h)
    worker = bearer(h, await make_user(h, "grid_worker"), minutes=60 * 24 * 40)
    headers = {**worker, "Idempotency-Key": "phone-1-report-7"}
    body = report_body()
    first = await h.client.post("/api/v1/reports", json=body, headers=headers)
    assert first.status_code == 201, first.text

    h.clock.advance(timedelta(days=1))
    await retention.purge(h.db, h.clock.now(), kept)
    inside = await h.client.post("/api/v1/reports", json=body, headers=headers)
    assert inside.status_code == 201 and inside.headers["Idempotent-Replayed"] == "true"
    assert inside.json()["id"] == first.json()["id"]

    h.clock.advance(timedelta(days=2))
    purged = await retention.purge(h.db, h.clock.now(), kept)
    after = await h.client.post("/api/v1/reports", json=body, headers=headers)
    assert purged.idempotency_keys == 1
    assert after.status_code == 201 and "Idempotent-Replayed" not in after.headers
    assert after.json()["id"] != first.json()["id"]
    assert (await count_rows(h, "reports"))["reports"] == 2


async def test_with_the_default_window_a_retry_after_it_is_refused_as_too_old_not_filed_twice(
    harness: Harness,
) -> None:
    h = harness
    await load_grid(h)
    worker = bearer(h, await make_user(h, "grid_worker"), minutes=60 * 24 * 40)
    headers = {**worker, "Idempotency-Key": "k"}
    assert (await h.client.post("/api/v1/reports", json=report_body(), headers=headers)).is_success

    h.clock.advance(timedelta(days=30, minutes=1))
    purged = await retention.purge(h.db, h.clock.now(), Retention.of(h.settings))
    again = await h.client.post("/api/v1/reports", json=report_body(), headers=headers)

    assert purged.idempotency_keys == 1
    assert again.status_code == 422, again.text
    assert (await count_rows(h, "reports"))["reports"] == 1


async def test_old_rate_limit_windows_go_and_the_current_ones_stay(harness: Harness) -> None:
    h = harness
    for key in ("writes:user:gone", "writes:user:back"):
        await ratelimit.count(h.db, key, h.clock.now())
    h.clock.advance(timedelta(days=1, minutes=5))
    await ratelimit.count(h.db, "writes:user:back", h.clock.now())

    purged = await retention.purge(h.db, h.clock.now(), Retention.of(h.settings))

    assert purged.rate_limit_counters == 1  # "back" forgot its old window itself
    assert (await count_rows(h, "rate_limit_counters"))["rate_limit_counters"] == 1
    assert await ratelimit.current(h.db, "writes:user:back", h.clock.now()) == 1


async def test_finished_deliveries_go_with_their_attempts_and_pending_ones_stay(
    harness: Harness,
) -> None:
    h = harness
    await subscribe(h, "http://127.0.0.1:9/hook", ["report.created"])
    reporter = Reporter(h)
    await reporter.report()
    await reporter.report(lon=120.07)
    await fanout.fan_out(h.db, h.clock.now(), 50)
    async with h.db.write() as session:
        conn = await session.connection()
        ids = [r.id for r in await conn.execute(_DELIVERIES.select().order_by("event_id"))]
        assert len(ids) == 2
        await conn.execute(
            update(_DELIVERIES).where(_DELIVERIES.c.id == ids[0]).values(status=SUCCEEDED)
        )
        await conn.execute(
            insert(_ATTEMPTS),
            [{"delivery_id": ids[0], "attempt": 1, "at": h.clock.now(), "duration_ms": 3}],
        )
    kept = Retention.of(h.settings)

    h.clock.advance(timedelta(days=89))
    assert (await retention.purge(h.db, h.clock.now(), kept)).webhook_deliveries == 0
    h.clock.advance(timedelta(days=2))
    purged = await retention.purge(h.db, h.clock.now(), kept)

    assert (purged.webhook_deliveries, purged.webhook_attempts) == (1, 1)
    async with h.db.read() as session:
        left = list(await (await session.connection()).execute(_DELIVERIES.select()))
    assert [(row.id, row.status) for row in left] == [(ids[1], PENDING)]


async def test_many_old_keys_go_in_small_batches(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    headers = await login_headers(h, "grid_worker")
    for i in range(5):
        keyed = {**headers, "Idempotency-Key": f"k{i}"}
        body = report_body(description=f"{i}")
        assert (await h.client.post("/api/v1/reports", json=body, headers=keyed)).is_success
    h.clock.advance(timedelta(days=31))

    purged = await retention.purge(h.db, h.clock.now(), Retention.of(h.settings), batch=2)

    assert purged.idempotency_keys == 5
    assert (await count_rows(h, "idempotency_keys"))["idempotency_keys"] == 0
