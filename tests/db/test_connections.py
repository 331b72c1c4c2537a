"""Connections the database server closed: noticed before use, so no request fails for them."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from sqlalchemy import text

from app.db import Database
from app.ratelimit import service as ratelimit
from tests.db.support import end_every_connection, service
from tests.factories import NOW, report_body


async def _fill_the_pools(db: Database) -> None:
    """Every connection of the process's pools opened and given back: an idle service."""
    async with AsyncExitStack() as held:
        for _ in range(db.engine.pool.size()):  # type: ignore[attr-defined]
            session = await held.enter_async_context(db.read())
            await (await session.connection()).execute(text("SELECT 1"))
        for _ in range(5 if db.dialect == "postgresql" else 0):  # SQLite counts in write units
            await ratelimit.count_on(await held.enter_async_context(db.counters()), "fill", NOW)


async def test_after_the_server_ends_every_connection_reports_still_succeed(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL restarted while the service idled with full pools: the next reports, one at
    a time, are all accepted (a file has no server to restart: on SQLite the same reports
    simply succeed)."""
    async with service(fresh_database_url, tmp_path) as s:
        s.settings.rate_limit_writes = 1000
        await _fill_the_pools(s.db)
        if backend == "postgis":
            assert await end_every_connection(fresh_database_url) >= 10

        statuses = []
        for i in range(30):  # more than both pools hold
            body = report_body(description=f"第{i}次")
            r = await s.client.post(
                "/api/v1/reports", json=body, headers={**s.worker, "Idempotency-Key": f"k{i}"}
            )
            statuses.append(r.status_code)
        mine = await s.client.get("/api/v1/reports?mine=true&limit=100", headers=s.worker)

    assert statuses == [201] * 30
    assert mine.status_code == 200 and len(mine.json()["items"]) == 30
