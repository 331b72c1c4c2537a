"""An agency's scorecard: its incidents by the cell scorecard's rules, and its own steps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Harness
from tests.factories import make_api_key
from tests.incidents.support import (
    EAST,
    EAST_SOUTH,
    LEAD,
    WEST,
    Headers,
    cast,
    ok,
    open_incident,
)

PERIOD = {"from": "2026-11-19T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


async def _stats(h: Harness, code: str, headers: Headers, status: int = 200) -> dict[str, Any]:
    r = await h.client.get(f"/api/v1/agencies/{code}/stats", params=PERIOD, headers=headers)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_lead_units_scorecard_shows_its_own_lateness(harness: Harness) -> None:
    people = await cast(harness)
    west = await open_incident(harness, people.worker)
    east = await open_incident(harness, people.east_worker, village=EAST_SOUTH)
    await ok(harness, people.lead_officer, west, "acknowledge")  # on time (limit 15 min)
    await ok(harness, people.west_officer, west, "acknowledge")
    harness.clock.advance(timedelta(minutes=20))
    await ok(harness, people.lead_officer, east, "acknowledge")  # 5 min late
    await ok(harness, people.lead_officer, west, "arrive")  # on time (limit 60 min)

    body = await _stats(harness, LEAD, people.lead_officer)
    assert body["agency"] == {"code": LEAD, "name": "区城市管理局", "kind": "bureau"}
    assert (body["incidents"], body["reports"]) == (2, 2)
    assert body["by_status"]["acknowledged"] == 1 and body["by_status"]["dispatched"] == 1
    assert body["overdue_open"] == 1  # 东镇 has not acknowledged the east one (due at 15 min)
    assert body["own"] == {
        "acknowledged": 2,
        "acknowledged_on_time": 1,
        "own_acknowledge_on_time_rate": 0.5,
        "arrived": 1,
        "arrived_on_time": 1,
        "own_arrive_on_time_rate": 1.0,
        "overdue_now": 0,
    }
    township = await _stats(harness, EAST, people.east_officer)
    assert township["incidents"] == 1
    assert township["own"]["overdue_now"] == 1  # its acknowledgement is late
    assert township["own"]["own_acknowledge_on_time_rate"] is None

    # A supervisor counts within the own cell; an admin everything.
    west_view = await _stats(harness, LEAD, people.west_supervisor)
    assert west_view["incidents"] == 1
    assert (await _stats(harness, LEAD, people.admin))["incidents"] == 2


async def test_an_agencys_scorecard_is_closed_to_others(harness: Harness) -> None:
    people = await cast(harness)
    await open_incident(harness, people.worker)
    for headers in (people.west_officer, people.east_officer):
        problem = await _stats(harness, LEAD, headers, 403)
        assert problem["type"] == "https://burnban.dev/problems/forbidden"
    await _stats(harness, WEST, people.worker, 403)
    await _stats(harness, "nobody", people.admin, 404)
    key = await make_api_key(harness, ["incidents:read"])
    assert (await _stats(harness, WEST, key))["incidents"] == 1
    r = await harness.client.get(
        f"/api/v1/agencies/{WEST}/stats",
        params={"from": PERIOD["to"], "to": PERIOD["from"]},
        headers=people.admin,
    )
    assert r.status_code == 422
