"""No request's database work stalls the other requests of its worker: on SQLite statements run
on aiosqlite's thread, not the event loop's; on PostgreSQL the driver is asynchronous."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text

from app.clock import FrozenClock
from app.db import Database, create_engine
from app.incidents.models import Incident
from app.main import create_app
from tests.conftest import Harness, settings_for
from tests.factories import DISTRICT, NOW, load_grid, login_headers
from tests.stats.factories import make_incident

INCIDENTS = 200_000
_INCIDENT_COLUMNS = [c.name for c in Incident.__table__.c]  # type: ignore[attr-defined]


async def _many_incidents(db: Database, template_id: str, count: int) -> None:
    """`count` copies of the template incident, each with an id and case number of its own,
    written by the database itself (a recursive count: SQLite has no generate_series)."""
    copied = ", ".join(
        "'c' || n.i" if c == "id" else "'330106-2026-c' || n.i" if c == "case_number" else f"t.{c}"
        for c in _INCIDENT_COLUMNS
    )
    async with db.write() as session:
        conn = await session.connection()
        await conn.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                f"INSERT INTO incidents ({', '.join(_INCIDENT_COLUMNS)}) "
                f"SELECT {copied} FROM n, incidents t WHERE t.id = :template"
            ),
            {"count": count, "template": template_id},
        )


async def test_a_request_sent_while_a_long_scorecard_runs_is_answered_first(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_database_url, tmp_path)
    db = Database(create_engine(settings.url, settings))
    clock = FrozenClock(NOW)
    app = create_app(settings, database=db, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://burnban.test") as c:
            h = Harness(c, db, settings, clock, backend, app)
            await load_grid(h)
            template = await make_incident(
                h, "330106001001", "2026-11-10T08:00", "closed", acknowledge_s=300, resolve_s=3600
            )
            await _many_incidents(db, template, INCIDENTS)
            headers = await login_headers(h, "supervisor")

            # The scorecard's first count over the incidents: when it goes to the database,
            # and when its answer has come back.
            counting, counted = asyncio.Event(), asyncio.Event()

            def _before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                if not counting.is_set() and "GROUP BY" in statement and "incidents" in statement:
                    counting.set()
                    seen.append(statement)

            def _after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                if seen and statement is seen[0]:
                    counted.set()

            seen: list[str] = []
            event.listen(db.engine.sync_engine, "before_cursor_execute", _before)
            event.listen(db.engine.sync_engine, "after_cursor_execute", _after)
            period = {"from": "2026-01-01T00:00:00+08:00", "to": "2027-01-01T00:00:00+08:00"}
            scorecard = asyncio.create_task(
                c.get(f"/api/v1/cells/{DISTRICT}/stats", params=period, headers=headers)
            )
            await asyncio.wait_for(counting.wait(), timeout=60)
            alive = await c.get("/healthz")
            assert alive.status_code == 200
            assert not counted.is_set(), "the loop waited for the scorecard's count"
            answer = await scorecard
            assert counted.is_set()
            assert answer.status_code == 200, answer.text
            assert answer.json()["incidents"] == INCIDENTS + 1, answer.text
    finally:
        await db.dispose()
