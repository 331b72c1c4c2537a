"""回头看: a supervisor looks back at a closed case within 30 days: passed, or reopened."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text, update

from app.incidents.access import INCIDENTS
from tests.conftest import Harness
from tests.factories import NOW
from tests.incidents.support import (
    LEAD,
    WEST,
    Cast,
    cast,
    detail,
    ok,
    open_incident,
    refused,
)


def _z(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def _closed_ago(h: Harness, incident: str, age: timedelta) -> None:
    """Date the closing back by `age`. The clock stays put: PyJWT refuses a token whose `iat`
    is later than the real time, so a token issued by a clock weeks ahead would not do."""
    async with h.db.write() as session:
        conn = await session.connection()
        await conn.execute(
            update(INCIDENTS).where(INCIDENTS.c.id == incident).values(closed_at=NOW - age)
        )


async def _closed(harness: Harness, people: Cast) -> str:
    incident = await open_incident(harness, people.worker)
    for action in ("acknowledge", "arrive"):
        await ok(harness, people.west_officer, incident, action)
    await ok(harness, people.lead_officer, incident, "acknowledge")
    await ok(harness, people.west_officer, incident, "resolve", outcome="extinguished")
    await ok(harness, people.worker, incident, "verify", passed=True)
    return incident


async def test_a_passed_revisit_leaves_it_closed(harness: Harness) -> None:
    people = await cast(harness)
    incident = await _closed(harness, people)
    await _closed_ago(harness, incident, timedelta(days=10))
    # Only a supervisor over the cell looks back; others are refused and nothing is stored.
    for headers in (people.west_officer, people.worker, people.lead_officer):
        await refused(harness, headers, incident, "revisit", 403, "forbidden", passed=True)
    await refused(
        harness, people.east_supervisor, incident, "revisit", 404, "not-found", passed=True
    )
    await refused(harness, people.supervisor, incident, "revisit", 422, "validation")
    item = await ok(
        harness, people.west_supervisor, incident, "revisit", passed=True, note="无复烧"
    )
    assert (item["status"], item["closed_at"], item["revisited_at"]) == (
        "closed",
        _z(-10 * 24 * 60),
        _z(0),
    )
    timeline = (await detail(harness, incident, people.supervisor))["timeline"]
    assert [(e["action"], e["from_status"], e["to_status"], e["note"]) for e in timeline][-1] == (
        "revisit",
        "closed",
        "closed",
        "无复烧",
    )


async def test_a_failed_revisit_reopens_it_as_rework_with_fresh_limits(harness: Harness) -> None:
    people = await cast(harness)
    incident = await _closed(harness, people)
    await _closed_ago(harness, incident, timedelta(days=29))
    reopened = await ok(harness, people.supervisor, incident, "revisit", passed=False, note="复烧")
    assert (reopened["status"], reopened["closed_at"], reopened["due_at"]) == (
        "dispatched",
        None,
        _z(15),
    )
    parts = {a["agency"]["code"]: a for a in reopened["assignments"]}
    for code in (WEST, LEAD):  # every agency's part starts again
        assert (parts[code]["acknowledged_at"], parts[code]["arrived_at"]) == (None, None)
        assert parts[code]["acknowledge_due_at"] == _z(15)
    acked = await ok(harness, people.west_officer, incident, "acknowledge")
    assert acked["due_at"] == _z(60)  # the arrive limit, from the reopening
    async with harness.db.read() as session:
        conn = await session.connection()
        rework = (
            await conn.execute(
                text("SELECT rework_count FROM incidents WHERE id = :id"), {"id": incident}
            )
        ).scalar_one()
    assert rework == 1
    # Open again: not revisited until it is closed again.
    await refused(
        harness, people.supervisor, incident, "revisit", 409, "invalid-transition", passed=True
    )


async def test_no_revisit_after_30_days_nor_of_an_open_or_voided_case(harness: Harness) -> None:
    people = await cast(harness)
    incident = await _closed(harness, people)
    await _closed_ago(harness, incident, timedelta(days=30, seconds=1))
    await refused(
        harness, people.supervisor, incident, "revisit", 409, "invalid-transition", passed=False
    )
    open_one = await open_incident(harness, people.worker, spot=1)
    await refused(
        harness, people.supervisor, open_one, "revisit", 409, "invalid-transition", passed=True
    )
    await ok(harness, people.supervisor, open_one, "void", note="误报")
    await refused(
        harness, people.supervisor, open_one, "revisit", 409, "invalid-transition", passed=False
    )
