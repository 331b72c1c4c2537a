"""POST /reports looks its caller up as it counts the write, with the report's scene: who may
report, the rate limit, and the order of refusals (401, 403 and 429 before 422)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.auth import service as auth_service
from app.auth.models import User
from app.clock import FrozenClock
from app.db import Database, create_engine
from app.main import create_app
from tests.conftest import Harness, settings_for
from tests.factories import (
    NOW,
    REPORT_TABLES,
    at,
    bearer,
    count_rows,
    load_grid,
    login_headers,
    make_api_key,
    make_user,
    problem_type,
    report_body,
    stored_api_key,
)

# Points far enough apart that each report opens an incident of its own.
APART = [at(120.01 + 0.005 * i, 30.01) for i in range(4)]


async def _post(h: Harness, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await h.client.post("/api/v1/reports", json=report_body(**body), headers=headers)


async def _rows(h: Harness, sql: str) -> list[tuple[Any, ...]]:
    async with h.db.read() as session:
        conn = await session.connection()
        return [tuple(row) for row in (await conn.execute(text(sql))).all()]


async def _last_case_seq(h: Harness) -> int | None:
    [(last,)] = await _rows(h, "SELECT max(last_seq) FROM case_counters")
    return None if last is None else int(last)


async def _counts_of_writes(h: Harness) -> list[tuple[Any, ...]]:
    return await _rows(h, "SELECT key, count FROM rate_limit_counters ORDER BY window_start")


async def test_a_reporter_over_the_limit_is_refused_until_the_minute_is_over(
    harness: Harness,
) -> None:
    h = harness
    h.settings.rate_limit_writes = 2
    await load_grid(h)
    worker = await login_headers(h, "grid_worker")
    for place in APART[:2]:
        assert (await _post(h, worker, location=place)).status_code == 201
    h.clock.advance(timedelta(seconds=20))

    refused = await _post(h, worker, location=APART[2])

    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == problem_type("rate-limited")
    assert refused.headers["Retry-After"] == "40"
    assert await count_rows(h, "reports", "incidents") == {"reports": 2, "incidents": 2}
    key = await make_api_key(h, ["reports:write"])  # a key of its own, with a count of its own
    assert (await _post(h, key, location=APART[2])).status_code == 201
    h.clock.advance(timedelta(seconds=40))
    assert (await _post(h, worker, location=APART[3])).status_code == 201


async def test_refused_callers_store_nothing(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    stored, revoked = await stored_api_key(h, "reports:write")
    async with h.db.write() as session:
        await auth_service.revoke_api_key(session, stored.id, None, NOW)
    refused = {
        401: [{"X-API-Key": "bb_not-one-of-ours"}, {"X-API-Key": "not-our-prefix"}],
        403: [await login_headers(h, "officer"), await make_api_key(h, ["grid:read"])],
    }
    refused[401].append({"X-API-Key": revoked})
    for status, callers in refused.items():
        for headers in callers:
            answer = await _post(h, headers)
            assert answer.status_code == status, answer.text
    counts = await count_rows(h, *REPORT_TABLES)
    assert set(counts.values()) == {0}, counts


async def test_an_inactive_worker_may_no_longer_report(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    worker = await make_user(h, "grid_worker")
    headers = bearer(h, worker)
    assert (await _post(h, headers)).status_code == 201
    async with h.db.write() as session:
        row = await session.get(User, worker.id)
        assert row is not None
        row.is_active = False
        session.add(row)

    answer = await _post(h, headers, location=APART[0])

    assert answer.status_code == 401, answer.text
    assert answer.json()["type"] == problem_type("unauthorized")
    assert (await count_rows(h, "reports"))["reports"] == 1


@asynccontextmanager
async def _deployed(
    backend: str, url: str, tmp_path: Path, allowed_writes: int
) -> AsyncIterator[Harness]:
    """The app on a database of its own, as deployed: every unit of work commits. (The harness
    rolls back what a refused report did, its unit being a savepoint.)"""
    settings = settings_for(url, tmp_path)
    settings.rate_limit_writes = allowed_writes
    clock = FrozenClock(NOW)
    db = Database(create_engine(settings.url, settings))
    try:
        app = create_app(settings, database=db, clock=clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
            h = Harness(client, db, settings, clock, backend, app)
            await load_grid(h)
            yield h
    finally:
        await db.dispose()


async def test_refused_reports_are_counted_and_take_no_case_number_as_deployed(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    async with _deployed(backend, fresh_database_url, tmp_path, allowed_writes=2) as h:
        officer = await login_headers(h, "officer")
        unknown = {"X-API-Key": "bb_not-one-of-ours"}
        reader = await make_api_key(h, ["grid:read"])
        statuses = [(await _post(h, caller)).status_code for caller in [officer] * 3]
        statuses += [(await _post(h, unknown)).status_code for _ in range(3)]
        statuses += [(await _post(h, reader)).status_code for _ in range(3)]
        assert statuses == [403, 403, 429, 401, 401, 429, 403, 403, 429]
        counts = await count_rows(h, *REPORT_TABLES)
        assert set(counts.values()) == {0}, counts

        worker = await login_headers(h, "grid_worker")
        for place in APART[:2]:
            assert (await _post(h, worker, location=place)).status_code == 201
        assert (await _post(h, worker, location=APART[2])).status_code == 429
        assert await _last_case_seq(h) == 2
        key = await make_api_key(h, ["reports:write"])
        opened = await _post(h, key, location=APART[2])
        assert opened.json()["incident"]["case_number"].endswith("-000003"), opened.text


async def test_a_report_does_not_wait_for_its_callers_older_minutes(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """A caller's first report in a new minute forgets its older minutes' counts, unless
    another transaction holds one of them (a report of the same caller still counting in the
    older minute, say): it skips that one rather than wait for it."""
    if backend != "postgis":
        pytest.skip("row locks are PostgreSQL's: SQLite's writers take turns with the whole file")
    async with _deployed(backend, fresh_database_url, tmp_path, allowed_writes=120) as h:
        key = await make_api_key(h, ["reports:write"])
        assert (await _post(h, key)).status_code == 201
        [(counted_as, _)] = await _counts_of_writes(h)
        async with h.db.engine.connect() as holder:
            await holder.execute(text("SELECT count FROM rate_limit_counters FOR UPDATE"))
            h.clock.advance(timedelta(minutes=1))
            answer = await asyncio.wait_for(_post(h, key, location=APART[0]), timeout=60)
            assert answer.status_code == 201, answer.text
            await holder.rollback()
        assert await _counts_of_writes(h) == [(counted_as, 1), (counted_as, 1)]
        h.clock.advance(timedelta(minutes=1))
        assert (await _post(h, key, location=APART[1])).status_code == 201
        assert await _counts_of_writes(h) == [(counted_as, 1)]


# JSON that does not parse is refused (422) before anything else, as on every route.
BAD_BODIES = [pytest.param(report_body(location=at(120.02, 91.0)), id="invalid field")]


def _request(body: dict[str, Any] | bytes) -> dict[str, Any]:
    if isinstance(body, bytes):
        return {"content": body}
    return {"json": body}


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_credentials_are_refused_before_the_body(
    harness: Harness, body: dict[str, Any] | bytes
) -> None:
    h = harness
    await load_grid(h)
    worker = await make_user(h, "grid_worker")
    expired = bearer(h, worker, minutes=-1)
    cases = [
        ({}, 401),
        ({"X-API-Key": "bb_not-one-of-ours"}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        (expired, 401),
        (await login_headers(h, "supervisor"), 403),
        (await make_api_key(h, ["incidents:read"]), 403),
        (bearer(h, worker), 422),
    ]
    for headers, status in cases:
        answer = await h.client.post(
            "/api/v1/reports",
            headers=headers | {"Content-Type": "application/json"},
            **_request(body),
        )
        assert answer.status_code == status, (headers, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    counts = await count_rows(h, *REPORT_TABLES)
    assert set(counts.values()) == {0}, counts


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_a_refused_body_counts_as_a_write(
    harness: Harness, body: dict[str, Any] | bytes
) -> None:
    h = harness
    h.settings.rate_limit_writes = 2
    await load_grid(h)
    key = await make_api_key(h, ["reports:write"])
    headers = key | {"Content-Type": "application/json"}
    for _ in range(2):
        answer = await h.client.post("/api/v1/reports", headers=headers, **_request(body))
        assert answer.status_code == 422, answer.text

    assert (await _post(h, key)).status_code == 429
    again = await h.client.post("/api/v1/reports", headers=headers, **_request(body))
    assert again.status_code == 429


async def test_a_writers_older_minutes_are_forgotten_at_its_first_write_in_a_new_one(
    harness: Harness,
) -> None:
    h = harness
    await load_grid(h)
    key = await make_api_key(h, ["reports:write"])
    for place in APART[:2]:
        assert (await _post(h, key, location=place)).status_code == 201
    [(counted_as, writes)] = await _counts_of_writes(h)
    assert writes == 2

    h.clock.advance(timedelta(minutes=1))
    assert (await _post(h, key, location=APART[2])).status_code == 201

    assert await _counts_of_writes(h) == [(counted_as, 1)]
