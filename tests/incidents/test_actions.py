"""Incident actions: the case cycle, who may act, time limits, and refusals that change nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.auth import service as auth_service
from app.auth.schemas import UserCreate
from app.config import Settings
from app.db import Database, create_engine
from app.grid import service as grid_service
from app.main import create_app
from app.spatial.store import store_for
from tests.conftest import Harness, settings_for
from tests.factories import NOW, PASSWORD, at, report_body, small_grid
from tests.incidents.support import (
    EAST,
    EAST_SOUTH,
    LEAD,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    Headers,
    act,
    cast,
    detail,
    ok,
    open_incident,
    refused,
    snapshot,
)
from tests.live import running

FINE = {"kind": "fine", "amount_yuan": 500, "legal_basis": "《大气污染防治法》第一百一十九条"}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _z(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def test_an_incident_is_worked_to_closure(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    harness.clock.advance(timedelta(minutes=5))

    acked = await ok(harness, people.west_officer, incident, "acknowledge", note="收到")
    assert (acked["status"], acked["version"]) == ("acknowledged", 2)
    assert acked["due_at"] == _z(60)  # arrive limit, counted from the opening
    acknowledged = {a["agency"]["code"]: a["acknowledged_at"] for a in acked["assignments"]}
    assert acknowledged == {WEST: _z(5), LEAD: None}

    harness.clock.advance(timedelta(minutes=20))
    # The lead unit acknowledges its own part after the township: recorded, status unchanged.
    lead_acked = await ok(harness, people.lead_officer, incident, "acknowledge")
    assert (lead_acked["status"], lead_acked["version"]) == ("acknowledged", 3)
    acknowledged = {a["agency"]["code"]: a["acknowledged_at"] for a in lead_acked["assignments"]}
    assert acknowledged == {WEST: _z(5), LEAD: _z(25)}
    arrived = await ok(harness, people.west_officer, incident, "arrive")
    assert (arrived["status"], arrived["due_at"]) == ("on_site", _z(120))

    harness.clock.advance(timedelta(minutes=10))
    lead_arrived = await ok(harness, people.lead_officer, incident, "arrive")
    arrivals = {a["agency"]["code"]: a["arrived_at"] for a in lead_arrived["assignments"]}
    assert (lead_arrived["status"], arrivals) == ("on_site", {WEST: _z(25), LEAD: _z(35)})
    resolved = await ok(
        harness, people.lead_officer, incident, "resolve", outcome="penalized", penalty=FINE
    )
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == {
        "outcome": "penalized",
        "penalty": {"kind": "fine", "amount_yuan": 500.0, "legal_basis": FINE["legal_basis"]},
        "legal_basis": FINE["legal_basis"],
        "resolved_at": _z(35),
    }

    closed = await ok(harness, people.worker, incident, "verify", passed=True, note="已熄灭")
    assert (closed["status"], closed["closed_at"], closed["version"]) == ("closed", _z(35), 7)
    assert closed["overdue"] is False

    body = await detail(harness, incident, people.supervisor)
    steps = [(e["action"], e["from_status"], e["to_status"]) for e in body["timeline"]][2:]
    assert steps == [
        ("acknowledge", "dispatched", "acknowledged"),
        ("acknowledge", "acknowledged", "acknowledged"),
        ("arrive", "acknowledged", "on_site"),
        ("arrive", "on_site", "on_site"),
        ("resolve", "on_site", "resolved"),
        ("verify", "resolved", "closed"),
    ]
    assert body["timeline"][2]["note"] == "收到"
    assert body["timeline"][2]["actor"]["name"] == "测试officer"
    async with harness.db.read() as session:
        conn = await session.connection()
        rows = (
            await conn.execute(
                text("SELECT type, payload FROM outbox_events WHERE incident_id = :id ORDER BY id"),
                {"id": incident},
            )
        ).all()
    updates = [_json(row[1]) for row in rows if row[0] == "incident.updated"]
    changes = ["acknowledge", "acknowledge", "arrive", "arrive", "resolve", "verify"]
    assert [u["change"] for u in updates] == changes
    assert updates[-1]["incident"]["status"] == "closed"
    assert updates[-1]["version"] == 7


async def test_a_failed_verification_sends_it_back_and_counts_rework(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.west_officer, incident, "acknowledge")
    await ok(harness, people.west_officer, incident, "arrive")
    await ok(harness, people.west_officer, incident, "resolve", outcome="penalized", penalty=FINE)
    harness.clock.advance(timedelta(minutes=150))
    back = await ok(harness, people.supervisor, incident, "verify", passed=False, note="仍在冒烟")
    assert (back["status"], back["due_at"], back["overdue"]) == ("on_site", _z(120), True)
    again = await ok(harness, people.west_officer, incident, "resolve", outcome="extinguished")
    assert again["resolution"] == {
        "outcome": "extinguished",
        "penalty": None,
        "legal_basis": None,
        "resolved_at": _z(150),
    }
    await ok(harness, people.west_supervisor, incident, "verify", passed=True)
    async with harness.db.read() as session:
        conn = await session.connection()
        row = (
            await conn.execute(
                text(
                    "SELECT rework_count, resolved_at IS NOT NULL, verified_at IS NOT NULL, "
                    "penalty_kind FROM incidents WHERE id = :id"
                ),
                {"id": incident},
            )
        ).one()
    assert tuple(row) == (1, True, True, None)


async def test_overdue_follows_the_clock_and_the_next_step(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    harness.clock.advance(timedelta(minutes=16))
    assert (await detail(harness, incident, people.admin))["overdue"] is True
    acked = await ok(harness, people.west_officer, incident, "acknowledge")
    assert acked["overdue"] is False  # now due at opened + 60 min
    harness.clock.advance(timedelta(minutes=45))
    assert (await detail(harness, incident, people.admin))["overdue"] is True


async def test_cured_meat_smoking_has_its_own_limits(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(
        harness, people.worker, category="cured_meat_smoking", material=None
    )
    first = await detail(harness, incident, people.admin)
    assert first["due_at"] == _z(30)
    await ok(harness, people.west_officer, incident, "acknowledge")
    on_site = await ok(harness, people.west_officer, incident, "arrive")
    assert on_site["due_at"] == _z(24 * 60)


async def test_who_may_do_what(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    # Outside the caller's reach: not found.
    await refused(harness, people.east_officer, incident, "acknowledge", 404, "not-found")
    await refused(harness, people.north_worker, incident, "verify", 404, "not-found", passed=True)
    await refused(harness, people.east_supervisor, incident, "reject", 404, "not-found", note="x")
    # Seen, but not theirs to do: forbidden.
    await refused(harness, people.worker, incident, "acknowledge", 403, "forbidden")
    await refused(harness, people.supervisor, incident, "acknowledge", 403, "forbidden")
    await refused(harness, people.admin, incident, "acknowledge", 403, "forbidden")
    await refused(
        harness,
        people.west_officer,
        incident,
        "reassign",
        403,
        "forbidden",
        category="cured_meat_smoking",
    )
    await refused(harness, people.worker, incident, "reject", 403, "forbidden", note="假的")
    # Not from this state: invalid transition.
    await refused(harness, people.west_officer, incident, "arrive", 409, "invalid-transition")
    await refused(
        harness, people.supervisor, incident, "verify", 409, "invalid-transition", passed=True
    )
    resolve = {"outcome": "extinguished"}
    await refused(
        harness, people.west_officer, incident, "resolve", 409, "invalid-transition", **resolve
    )
    # An unknown missing id is simply not found.
    r = await act(harness, people.admin, "0" * 32, "acknowledge")
    assert r.status_code == 404


async def test_invalid_bodies_are_refused(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.west_officer, incident, "acknowledge")
    await ok(harness, people.west_officer, incident, "arrive")
    officer = people.west_officer
    cases: list[dict[str, Any]] = [
        {},  # no outcome
        {"outcome": "burnt"},
        {"outcome": "penalized"},  # no penalty
        {"outcome": "stopped", "penalty": FINE},  # a penalty without penalized
        {"outcome": "penalized", "penalty": {**FINE, "amount_yuan": 0}},
        {"outcome": "penalized", "penalty": {**FINE, "amount_yuan": -5}},
        {"outcome": "penalized", "penalty": {"kind": "fine", "legal_basis": "x"}},
        {"outcome": "penalized", "penalty": {"kind": "warning", "amount_yuan": 0}},
        {"outcome": "penalized", "penalty": {"kind": "jail", "legal_basis": "x"}},
    ]
    for body in cases:
        problem = await refused(harness, officer, incident, "resolve", 422, "validation", **body)
        assert problem["errors"], body
    await refused(harness, officer, incident, "dance", 422, "validation")
    await refused(harness, people.supervisor, incident, "verify", 422, "validation")  # no passed
    warned = await ok(
        harness,
        officer,
        incident,
        "resolve",
        outcome="penalized",
        penalty={"kind": "warning", "legal_basis": "《桂林市禁止露天焚烧规定》"},
    )
    assert warned["resolution"]["penalty"]["amount_yuan"] is None


async def test_reject_is_a_supervisors_void(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await refused(harness, people.supervisor, incident, "reject", 422, "validation")
    await refused(harness, people.supervisor, incident, "reject", 422, "validation", note="")
    # The assessed units may no longer erase a case by rejecting it.
    for officer in (people.lead_officer, people.west_officer):
        await refused(harness, officer, incident, "reject", 403, "forbidden", note="x")
    await ok(harness, people.west_officer, incident, "acknowledge")
    rejected = await ok(harness, people.supervisor, incident, "reject", note="系炊烟，非焚烧")
    assert (rejected["status"], rejected["closed_at"], rejected["void_reason"]) == (
        "rejected",
        _z(0),
        None,
    )
    timeline = (await detail(harness, incident, people.supervisor))["timeline"]
    assert (timeline[-1]["action"], timeline[-1]["to_status"]) == ("void", "rejected")
    await refused(
        harness,
        people.supervisor,
        incident,
        "reassign",
        409,
        "invalid-transition",
        cell_code=EAST_SOUTH,
    )
    await refused(
        harness, people.supervisor, incident, "reject", 409, "invalid-transition", note="x"
    )


async def test_if_match_guards_against_stale_writes(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    for stale in ('"7"', "bogus"):
        await refused(
            harness,
            people.west_officer,
            incident,
            "acknowledge",
            412,
            "precondition-failed",
            if_match=stale,
        )
    r = await act(harness, people.west_officer, incident, "acknowledge", if_match='W/"1"')
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    # The other agency acting on what it read before: stale.
    await refused(
        harness,
        people.lead_officer,
        incident,
        "acknowledge",
        412,
        "precondition-failed",
        if_match='"1"',
    )
    r = await act(harness, people.lead_officer, incident, "acknowledge", if_match="*")
    assert r.status_code == 200


async def test_a_supervisor_reassigns_to_another_village_and_category(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.west_officer, incident, "acknowledge")
    harness.clock.advance(timedelta(minutes=30))
    moved = await ok(
        harness,
        people.supervisor,
        incident,
        "reassign",
        cell_code=EAST_SOUTH,
        category="cured_meat_smoking",
        note="实为熏腊肉，位于东镇",
    )
    assert (moved["status"], moved["category"], moved["version"]) == (
        "dispatched",
        "cured_meat_smoking",
        3,
    )
    assert moved["cell"]["village"]["code"] == EAST_SOUTH
    assert moved["cell"]["township"]["code"] == EAST
    assert [
        (a["agency"]["code"], a["role"], a["acknowledged_at"]) for a in moved["assignments"]
    ] == [
        (EAST, "responsible", None),
        (LEAD, "lead", None),
    ]
    assert moved["due_at"] == _z(30 + 30)  # cured meat: 30 min, from the reassignment
    # The old township has lost it; the new one has it.
    await refused(harness, people.west_officer, incident, "arrive", 404, "not-found")
    acked = await ok(harness, people.east_officer, incident, "acknowledge")
    assert acked["due_at"] == _z(30 + 120)
    async with harness.db.read() as session:
        conn = await session.connection()
        resolve_due = (
            await conn.execute(
                text("SELECT resolve_due_at FROM incidents WHERE id = :id"), {"id": incident}
            )
        ).scalar_one()
    assert str(resolve_due).startswith("2026-11-21 02:30:00")  # 24 h after the reassignment
    timeline = (await detail(harness, incident, people.admin))["timeline"]
    assert [e["action"] for e in timeline][-3:] == ["reassign", "routed", "acknowledge"]


async def test_reassign_refusals(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    sup = people.supervisor
    await refused(harness, sup, incident, "reassign", 422, "validation")  # nothing to change
    await refused(harness, sup, incident, "reassign", 422, "validation", cell_code="999")
    await refused(harness, sup, incident, "reassign", 422, "validation", cell_code=WEST)
    await refused(harness, sup, incident, "reassign", 422, "validation", category="fireworks")
    # A township supervisor may not send it out of the township.
    await refused(
        harness,
        people.west_supervisor,
        incident,
        "reassign",
        403,
        "forbidden",
        cell_code=EAST_SOUTH,
    )
    moved = await ok(harness, people.west_supervisor, incident, "reassign", cell_code=WEST_NORTH)
    assert moved["cell"]["village"]["code"] == WEST_NORTH
    before = await snapshot(harness, incident)
    assert before.version == 2


OFFICERS = 6


async def _prepare_race(settings: Settings) -> tuple[Headers, list[Headers]]:
    """Grid, a grid worker and officers of both assigned agencies; their headers."""
    db = Database(create_engine(settings.url, settings))
    now = datetime.now(UTC)
    try:
        async with db.write() as session:
            await grid_service.import_grid(session, store_for(db.dialect), small_grid(), None, now)
        headers = []
        people = [("grid_worker", WEST_SOUTH, None)] + [
            ("officer", None, (WEST, LEAD)[i % 2]) for i in range(OFFICERS)
        ]
        for i, (role, cell, agency) in enumerate(people):
            data = UserCreate(
                username=f"user{i}",
                password=PASSWORD,
                name=f"用户{i}",
                role=role,
                cell_code=cell,
                agency_code=agency,
            )
            async with db.write() as session:
                user = await auth_service.create_user(session, data, None, now)
            token = auth_service.issue_token(user, settings.secret_key, now, 60)
            headers.append({"Authorization": f"Bearer {token}"})
        return headers[0], headers[1:]
    finally:
        await db.dispose()


async def _race(
    base_url: str, worker: Headers, officers: list[Headers], lon: float
) -> tuple[list[int], tuple[int, int]]:
    """Every officer acknowledges at once: the answers' statuses, and the incident's version
    and number of acknowledgements after."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        observed = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        body = report_body(location=at(lon, 30.02), observed_at=observed)
        r = await client.post("/api/v1/reports", json=body, headers=worker)
        assert r.status_code == 201, r.text
        incident = r.json()["incident"]["id"]
        path = f"/api/v1/incidents/{incident}/actions"
        answers = await asyncio.gather(
            *(client.post(path, json={"action": "acknowledge"}, headers=h) for h in officers)
        )
        after = await client.get(f"/api/v1/incidents/{incident}", headers=officers[0])
    timeline = [e["action"] for e in after.json()["timeline"]]
    acks = {a["agency"]["code"] for a in after.json()["assignments"] if a["acknowledged_at"]}
    assert len(acks) == timeline.count("acknowledge")  # one acknowledgement per agency at most
    return sorted(a.status_code for a in answers), (after.json()["version"], len(acks))


def test_officers_acting_at_once_cannot_both_win(fresh_database_url: str, tmp_path: Path) -> None:
    settings = settings_for(fresh_database_url, tmp_path)
    worker, officers = asyncio.run(_prepare_race(settings))
    guarded = [{**h, "If-Match": '"1"'} for h in officers]
    with running(create_app(settings)) as base_url:
        plain = asyncio.run(_race(base_url, worker, officers, 120.01))
        stale = asyncio.run(_race(base_url, worker, guarded, 120.03))
    # Each of the two agencies acknowledges once; the other officers of each are refused.
    assert plain == ([200] * 2 + [409] * (OFFICERS - 2), (3, 2))
    assert stale == ([200] + [412] * (OFFICERS - 1), (2, 1))
