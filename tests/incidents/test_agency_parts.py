"""Each assigned agency handles its own part: its own acknowledgement, arrival and lateness."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Harness
from tests.factories import NOW
from tests.incidents.support import (
    LEAD,
    WEST,
    cast,
    detail,
    ids,
    ok,
    open_incident,
    refused,
)


def _z(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _part(item: dict[str, Any], agency: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in item["assignments"] if a["agency"]["code"] == agency)
    return found


async def test_the_lead_unit_acknowledges_first_without_moving_the_incident(
    harness: Harness,
) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    harness.clock.advance(timedelta(minutes=3))
    lead = await ok(harness, people.lead_officer, incident, "acknowledge")
    # The status follows the responsible township, which has not acknowledged yet.
    assert (lead["status"], lead["version"], lead["due_at"]) == ("dispatched", 2, _z(15))
    assert _part(lead, LEAD)["acknowledged_at"] == _z(3)
    assert _part(lead, WEST)["acknowledged_at"] is None
    await refused(harness, people.lead_officer, incident, "acknowledge", 409, "invalid-transition")
    # The lead unit may arrive on its own; the incident waits for the township.
    harness.clock.advance(timedelta(minutes=7))
    lead = await ok(harness, people.lead_officer, incident, "arrive")
    assert (lead["status"], _part(lead, LEAD)["arrived_at"]) == ("dispatched", _z(10))
    await refused(harness, people.lead_officer, incident, "arrive", 409, "invalid-transition")
    township = await ok(harness, people.west_officer, incident, "acknowledge")
    assert (township["status"], township["due_at"]) == ("acknowledged", _z(60))
    township = await ok(harness, people.west_officer, incident, "arrive")
    assert (township["status"], township["due_at"]) == ("on_site", _z(120))
    timeline = (await detail(harness, incident, people.supervisor))["timeline"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in timeline][2:] == [
        ("acknowledge", "dispatched", "dispatched"),
        ("arrive", "dispatched", "dispatched"),
        ("acknowledge", "dispatched", "acknowledged"),
        ("arrive", "acknowledged", "on_site"),
    ]


async def test_an_agency_arrives_only_after_acknowledging(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.west_officer, incident, "acknowledge")
    await refused(harness, people.lead_officer, incident, "arrive", 409, "invalid-transition")
    # Not an officer of an assigned agency: refused, nothing stored.
    await refused(harness, people.supervisor, incident, "arrive", 403, "forbidden")
    await refused(harness, people.worker, incident, "acknowledge", 403, "forbidden")
    await ok(harness, people.west_officer, incident, "arrive")
    await ok(harness, people.west_officer, incident, "resolve", outcome="extinguished")
    # Once resolved, no agency's own step is taken any more.
    await refused(harness, people.lead_officer, incident, "acknowledge", 409, "invalid-transition")


async def test_each_agencys_lateness_shows_in_answers_and_its_inbox(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    harness.clock.advance(timedelta(minutes=5))
    await ok(harness, people.west_officer, incident, "acknowledge")
    harness.clock.advance(timedelta(minutes=15))  # 20 min: past the acknowledge limit (15)

    item = await detail(harness, incident, people.supervisor)
    assert item["overdue"] is False  # the township is on time: arrive due at 60 min
    lead, township = _part(item, LEAD), _part(item, WEST)
    assert (lead["acknowledge_due_at"], lead["arrive_due_at"]) == (_z(15), _z(60))
    assert (lead["overdue"], lead["late"]) == (True, True)
    assert (township["overdue"], township["late"]) == (False, False)

    lead_inbox = f"/api/v1/agencies/{LEAD}/incidents"
    west_inbox = f"/api/v1/agencies/{WEST}/incidents"
    assert await ids(harness, lead_inbox, people.lead_officer, overdue="true") == [incident]
    assert await ids(harness, lead_inbox, people.lead_officer, overdue="false") == []
    assert await ids(harness, west_inbox, people.west_officer, overdue="true") == []
    assert await ids(harness, west_inbox, people.west_officer, overdue="false") == [incident]
    assert await ids(harness, "/api/v1/incidents", people.supervisor, overdue="true") == []

    # Acknowledged late: no longer overdue, still late.
    acked = await ok(harness, people.lead_officer, incident, "acknowledge")
    assert (_part(acked, LEAD)["overdue"], _part(acked, LEAD)["late"]) == (False, True)
    assert await ids(harness, lead_inbox, people.lead_officer, overdue="true") == []

    # Past the arrive limit without arriving: both are overdue, in every list.
    harness.clock.advance(timedelta(minutes=41))
    item = await detail(harness, incident, people.supervisor)
    assert item["overdue"] is True
    assert _part(item, LEAD)["overdue"] and _part(item, WEST)["overdue"]
    assert await ids(harness, west_inbox, people.west_officer, overdue="true") == [incident]
