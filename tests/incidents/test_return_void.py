"""The assessed unit cannot erase its own cases: officers return, supervisors void."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Harness
from tests.incidents.support import (
    DISTRICT,
    EAST_SOUTH,
    WEST_NORTH,
    cast,
    detail,
    ids,
    ok,
    open_incident,
    refused,
)

PERIOD = {"from": "2026-11-19T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


async def test_an_officer_returns_a_case_and_only_a_supervisor_voids_it(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.west_officer, incident, "acknowledge")
    # A note is required; only an officer of an assigned agency returns a case.
    await refused(harness, people.west_officer, incident, "return", 422, "validation")
    await refused(harness, people.west_officer, incident, "return", 422, "validation", note="")
    await refused(harness, people.worker, incident, "return", 403, "forbidden", note="x")
    await refused(harness, people.supervisor, incident, "return", 403, "forbidden", note="x")
    await refused(harness, people.east_officer, incident, "return", 404, "not-found", note="x")
    returned = await ok(harness, people.west_officer, incident, "return", note="不属本镇辖区")
    assert (returned["status"], returned["closed_at"], returned["overdue"]) == (
        "returned",
        None,
        False,
    )
    # It waits for a supervisor: not overdue, and no agency works it meanwhile.
    harness.clock.advance(timedelta(hours=3))
    assert (await detail(harness, incident, people.supervisor))["overdue"] is False
    assert await ids(harness, "/api/v1/incidents", people.supervisor, overdue="true") == []
    for action, body in (("acknowledge", {}), ("arrive", {}), ("return", {"note": "x"})):
        await refused(
            harness, people.lead_officer, incident, action, 409, "invalid-transition", **body
        )
    # The assessed units may not void it.
    for officer in (people.west_officer, people.lead_officer):
        await refused(harness, officer, incident, "void", 403, "forbidden", note="x")
    await refused(harness, people.east_supervisor, incident, "void", 404, "not-found", note="x")
    await refused(harness, people.supervisor, incident, "void", 422, "validation")
    await refused(
        harness, people.supervisor, incident, "void", 422, "validation", note="x", reason="bored"
    )
    voided = await ok(
        harness, people.west_supervisor, incident, "void", note="与另案重复", reason="duplicate"
    )
    assert (voided["status"], voided["void_reason"]) == ("rejected", "duplicate")
    assert voided["closed_at"] is not None
    await refused(harness, people.supervisor, incident, "void", 409, "invalid-transition", note="x")
    timeline = (await detail(harness, incident, people.supervisor))["timeline"]
    assert [(e["action"], e["to_status"], e["note"]) for e in timeline][-2:] == [
        ("return", "returned", "不属本镇辖区"),
        ("void", "rejected", "与另案重复"),
    ]


async def test_a_returned_case_is_routed_again_by_a_supervisor(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    await ok(harness, people.lead_officer, incident, "return", note="实在东镇")
    await refused(
        harness, people.west_officer, incident, "reassign", 403, "forbidden", cell_code=EAST_SOUTH
    )
    moved = await ok(harness, people.supervisor, incident, "reassign", cell_code=EAST_SOUTH)
    assert (moved["status"], moved["cell"]["village"]["code"]) == ("dispatched", EAST_SOUTH)
    await ok(harness, people.east_officer, incident, "acknowledge")


async def test_the_scorecard_counts_returned_cases_and_leaves_out_voided_ones(
    harness: Harness,
) -> None:
    people = await cast(harness)
    closed = await open_incident(harness, people.worker)
    for action, body in (
        ("acknowledge", {}),
        ("arrive", {}),
        ("resolve", {"outcome": "extinguished"}),
    ):
        await ok(harness, people.west_officer, closed, action, **body)
    await ok(harness, people.supervisor, closed, "verify", passed=True)
    returned = await open_incident(harness, people.north_worker, village=WEST_NORTH)
    await ok(harness, people.west_officer, returned, "return", note="系炊烟")
    voided = await open_incident(harness, people.east_worker, village=EAST_SOUTH)
    await ok(harness, people.supervisor, voided, "void", note="不归我区", reason="not_ours")

    r = await harness.client.get(
        f"/api/v1/cells/{DISTRICT}/stats", params=PERIOD, headers=people.supervisor
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["incidents"], body["returned"]) == (3, 1)
    assert body["by_status"]["returned"] == 1
    assert body["voided"] == 1
    assert body["closure_rate"] == 0.5  # 1 closed / (3 − 1 voided): the returned one counts
    assert {"closure_rate", "on_time_rate", "rework_rate"} <= set(body["rate_definitions"])
