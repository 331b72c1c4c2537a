"""督办: one incident.overdue event per stage past its limit, and a supervisor's supervise."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.auth import service as auth_service
from app.auth.schemas import UserCreate
from app.config import Settings
from app.db import Database, create_engine
from app.grid import service as grid_service
from app.incidents import escalation
from app.spatial.store import store_for
from app.webhooks.worker import WorkerOptions, client, dispatch_once
from tests.conftest import Harness, app_client, settings_for
from tests.factories import NOW, PASSWORD, at, report_body, small_grid
from tests.incidents.support import (
    DISTRICT,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    cast,
    detail,
    ids,
    ok,
    open_incident,
    refused,
)

PERIOD = {"from": "2026-11-19T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


def _z(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def _overdue_events(db: Database, incident_id: str | None = None) -> list[dict[str, Any]]:
    async with db.read() as session:
        conn = await session.connection()
        query = "SELECT payload FROM outbox_events WHERE type = 'incident.overdue'"
        if incident_id is not None:
            query += " AND incident_id = :id"
        rows = (await conn.execute(text(query + " ORDER BY id"), {"id": incident_id})).all()
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]


async def test_each_stage_past_its_limit_is_announced_once(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    assert await escalation.sweep(harness.db, harness.clock.now()) == 0
    harness.clock.advance(timedelta(minutes=16))  # the acknowledge limit (15 min) has passed
    assert await escalation.sweep(harness.db, harness.clock.now()) == 1
    assert await escalation.sweep(harness.db, harness.clock.now()) == 0  # announced already
    [event] = await _overdue_events(harness.db, incident)
    assert (event["id"], event["stage"], event["due_at"], event["status"]) == (
        incident,
        "acknowledge",
        _z(15),
        "dispatched",
    )
    # It shows as overdue in the township's inbox, and in the timeline.
    inbox = f"/api/v1/agencies/{WEST}/incidents"
    assert await ids(harness, inbox, people.west_officer, overdue="true") == [incident]
    timeline = (await detail(harness, incident, people.supervisor))["timeline"]
    assert (timeline[-1]["action"], timeline[-1]["actor"]) == (
        "overdue",
        {"id": None, "name": None},
    )
    # The next stage is a new one: announced when its own limit passes, once.
    await ok(harness, people.west_officer, incident, "acknowledge")
    harness.clock.advance(timedelta(minutes=30))  # 46 min: arrive is due at 60
    assert await escalation.sweep(harness.db, harness.clock.now()) == 0
    harness.clock.advance(timedelta(minutes=15))
    assert await escalation.sweep(harness.db, harness.clock.now()) == 1
    assert await escalation.sweep(harness.db, harness.clock.now()) == 0
    stages = [e["stage"] for e in await _overdue_events(harness.db, incident)]
    assert stages == ["acknowledge", "arrive"]


async def test_a_limit_passed_long_before_any_sweep_is_not_announced(harness: Harness) -> None:
    people = await cast(harness)
    await open_incident(harness, people.worker)
    harness.clock.advance(escalation.ANNOUNCE_WINDOW + timedelta(minutes=16))
    assert await escalation.sweep(harness.db, harness.clock.now()) == 0
    assert await _overdue_events(harness.db) == []
    recent = await open_incident(harness, people.worker, spot=1)
    harness.clock.advance(timedelta(minutes=16))
    assert await escalation.sweep(harness.db, harness.clock.now()) == 1
    assert [e["id"] for e in await _overdue_events(harness.db)] == [recent]


async def test_the_webhook_workers_round_sweeps(harness: Harness) -> None:
    people = await cast(harness)
    await open_incident(harness, people.worker)
    harness.clock.advance(timedelta(minutes=20))
    async with client() as http:
        first = await dispatch_once(harness.db, harness.clock, http, WorkerOptions())
        second = await dispatch_once(harness.db, harness.clock, http, WorkerOptions())
    assert (first.escalated, second.escalated) == (1, 0)
    assert len(await _overdue_events(harness.db)) == 1


async def _prepare(settings: Settings) -> dict[str, str]:
    db = Database(create_engine(settings.url, settings))
    now = datetime.now(UTC)
    try:
        async with db.write() as session:
            await grid_service.import_grid(session, store_for(db.dialect), small_grid(), None, now)
        data = UserCreate(
            username="worker",
            password=PASSWORD,
            name="网格员",
            role="grid_worker",
            cell_code=WEST_SOUTH,
            agency_code=None,
        )
        async with db.write() as session:
            user = await auth_service.create_user(session, data, None, now)
        token = auth_service.issue_token(user, settings.secret_key, now, 60)
        return {"Authorization": f"Bearer {token}"}
    finally:
        await db.dispose()


async def _several_workers(url: str, tmp_path: Path) -> tuple[list[int], int, int]:
    settings = settings_for(url, tmp_path)
    worker = await _prepare(settings)
    async with app_client(url, tmp_path) as http:
        for lon in (120.01, 120.02, 120.03):
            observed = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
            body = report_body(location=at(lon, 30.02), observed_at=observed)
            r = await http.post("/api/v1/reports", json=body, headers=worker)
            assert r.status_code == 201, r.text
            assert r.json()["incident"]["is_new"]
    later = datetime.now(UTC) + timedelta(hours=1)  # every acknowledge limit has passed
    dbs = [Database(create_engine(settings.url, settings)) for _ in range(4)]
    try:
        announced = await asyncio.gather(*(escalation.sweep(db, later) for db in dbs))
        events = len(await _overdue_events(dbs[0]))
        async with dbs[0].read() as session:
            conn = await session.connection()
            notices = (
                await conn.execute(text("SELECT count(*) FROM incident_overdue_notices"))
            ).scalar_one()
    finally:
        for db in dbs:
            await db.dispose()
    return sorted(announced), events, int(notices)


def test_several_workers_announce_each_stage_once(fresh_database_url: str, tmp_path: Path) -> None:
    announced, events, notices = asyncio.run(_several_workers(fresh_database_url, tmp_path))
    assert sum(announced) == 3, announced
    assert (events, notices) == (3, 3)


async def test_a_supervisor_supervises_and_lists_filter_on_it(harness: Harness) -> None:
    people = await cast(harness)
    supervised = await open_incident(harness, people.worker)
    other = await open_incident(harness, people.north_worker, village=WEST_NORTH)
    deadline = _z(40)
    body = {"level": "listed", "due_at": deadline, "note": "限期整改"}
    # The wrong callers and bodies are refused; nothing is stored.
    await refused(harness, people.west_officer, supervised, "supervise", 403, "forbidden", **body)
    await refused(harness, people.worker, supervised, "supervise", 403, "forbidden", **body)
    await refused(
        harness, people.east_supervisor, supervised, "supervise", 404, "not-found", **body
    )
    for bad in (
        {"level": "urgent"},
        {"level": "listed", "due_at": _z(-1)},  # in the past
        {"level": "listed", "due_at": "2026-11-20T12:00:00"},  # no offset
    ):
        await refused(harness, people.supervisor, supervised, "supervise", 422, "validation", **bad)
    item = await ok(harness, people.west_supervisor, supervised, "supervise", **body)
    assert (item["status"], item["version"]) == ("dispatched", 2)
    assert item["supervision"] == {
        "level": "listed",
        "since": _z(0),
        "due_at": deadline,
        "overdue": False,
    }
    timeline = (await detail(harness, supervised, people.west_officer))["timeline"]
    assert (timeline[-1]["action"], timeline[-1]["to_status"]) == ("supervise", "dispatched")
    assert timeline[-1]["note"].startswith("listed, due 2026-11-20T02:40:00")
    assert timeline[-1]["note"].endswith("限期整改")

    everything = f"/api/v1/cells/{DISTRICT}/incidents"
    assert await ids(harness, everything, people.supervisor, supervised="true") == [supervised]
    assert await ids(harness, everything, people.supervisor, supervised="false") == [other]
    inbox = f"/api/v1/agencies/{WEST}/incidents"
    assert await ids(harness, inbox, people.west_officer, supervised="true") == [supervised]

    # Past the supervisor's deadline while still worked: overdue, and announced once.
    harness.clock.advance(timedelta(minutes=41))
    assert (await detail(harness, supervised, people.supervisor))["supervision"]["overdue"]
    # Both incidents' acknowledge stages, and the supervisor's deadline.
    assert await escalation.sweep(harness.db, harness.clock.now()) == 3
    stages = sorted(e["stage"] for e in await _overdue_events(harness.db, supervised))
    assert stages == ["acknowledge", "supervision"]
    # A closed incident is not supervised any more.
    for action in ("acknowledge", "arrive"):
        await ok(harness, people.west_officer, supervised, action)
    await ok(harness, people.west_officer, supervised, "resolve", outcome="extinguished")
    await ok(harness, people.supervisor, supervised, "verify", passed=True)
    await refused(
        harness, people.supervisor, supervised, "supervise", 409, "invalid-transition", **body
    )


async def test_the_scorecard_counts_supervised_cases_and_their_on_time_rate(
    harness: Harness,
) -> None:
    people = await cast(harness)
    on_time = await open_incident(harness, people.worker)
    late = await open_incident(harness, people.north_worker, village=WEST_NORTH)
    await open_incident(harness, people.worker, spot=1)  # never supervised
    await ok(harness, people.supervisor, on_time, "supervise", level="supervised", due_at=_z(30))
    await ok(harness, people.supervisor, late, "supervise", level="reminder")
    for incident, minutes in ((on_time, 20), (late, 110)):  # resolved at 20 and 130 min
        for action in ("acknowledge", "arrive"):
            await ok(harness, people.west_officer, incident, action)
        harness.clock.advance(timedelta(minutes=minutes))
        await ok(harness, people.west_officer, incident, "resolve", outcome="extinguished")
        await ok(harness, people.supervisor, incident, "verify", passed=True)
    r = await harness.client.get(
        f"/api/v1/cells/{DISTRICT}/stats", params=PERIOD, headers=people.supervisor
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["incidents"], body["supervised"]) == (3, 2)
    # On time by the supervisor's deadline (30 min); the other by its own limit (120 min).
    assert body["supervised_on_time_rate"] == 0.5
    assert "supervisor's deadline" in body["rate_definitions"]["supervised_on_time_rate"]
