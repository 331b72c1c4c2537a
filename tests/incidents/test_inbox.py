"""An agency's inbox: what is assigned to it, for its officers, supervisors and admins."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Harness
from tests.factories import make_api_key
from tests.incidents.support import (
    EAST,
    EAST_SOUTH,
    LEAD,
    WEST,
    WEST_NORTH,
    cast,
    ids,
    ok,
    open_incident,
)


async def test_an_inbox_holds_what_is_assigned_to_the_agency(harness: Harness) -> None:
    people = await cast(harness)
    west = [await open_incident(harness, people.worker)]
    harness.clock.advance(timedelta(minutes=1))
    west.append(await open_incident(harness, people.north_worker, village=WEST_NORTH))
    harness.clock.advance(timedelta(minutes=1))
    east = await open_incident(harness, people.east_worker, village=EAST_SOUTH)

    inbox = f"/api/v1/agencies/{WEST}/incidents"
    assert await ids(harness, inbox, people.west_officer) == west[::-1]
    assert await ids(harness, f"/api/v1/agencies/{EAST}/incidents", people.east_officer) == [east]
    lead_inbox = f"/api/v1/agencies/{LEAD}/incidents"
    assert await ids(harness, lead_inbox, people.lead_officer) == [east, *west[::-1]]
    assert await ids(harness, lead_inbox, people.admin) == [east, *west[::-1]]
    # A supervisor sees an agency's inbox within the supervised cell.
    assert await ids(harness, lead_inbox, people.supervisor) == [east, *west[::-1]]
    assert await ids(harness, lead_inbox, people.west_supervisor) == west[::-1]
    # Filters apply as on every list.
    await ok(harness, people.west_officer, west[0], "acknowledge")
    assert await ids(harness, inbox, people.west_officer, status="dispatched") == [west[1]]
    assert await ids(harness, inbox, people.west_officer, order="asc") == west


async def test_an_inbox_is_closed_to_others(harness: Harness) -> None:
    people = await cast(harness)
    await open_incident(harness, people.worker)
    key = await make_api_key(harness, ["incidents:read"])
    for headers in (people.east_officer, people.lead_officer, people.worker, key):
        r = await harness.client.get(f"/api/v1/agencies/{WEST}/incidents", headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["type"] == "https://burnban.dev/problems/forbidden"
    r = await harness.client.get("/api/v1/agencies/nobody/incidents", headers=people.admin)
    assert r.status_code == 404
    r = await harness.client.get(f"/api/v1/agencies/{WEST}/incidents")
    assert r.status_code == 401


async def test_a_reassignment_moves_it_between_inboxes(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.west_officer, incident, "acknowledge")
    west_inbox, east_inbox = (f"/api/v1/agencies/{a}/incidents" for a in (WEST, EAST))
    assert await ids(harness, west_inbox, people.west_officer) == [incident]
    assert await ids(harness, east_inbox, people.east_officer) == []
    await ok(harness, people.supervisor, incident, "reassign", cell_code=EAST_SOUTH)
    assert await ids(harness, west_inbox, people.west_officer) == []
    assert await ids(harness, east_inbox, people.east_officer) == [incident]
    assert await ids(harness, f"/api/v1/cells/{WEST}/incidents", people.supervisor) == []
    assert await ids(harness, f"/api/v1/cells/{EAST}/incidents", people.supervisor) == [incident]
