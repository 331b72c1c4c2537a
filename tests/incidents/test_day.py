"""A scripted day in a district: reports, merges, every action, rework, a reassignment, overdue
items by moving the clock, then the lists checked against counts made here."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Harness
from tests.factories import DISTRICT, at, report_body
from tests.incidents.support import (
    EAST,
    EAST_SOUTH,
    LEAD,
    WEST,
    WEST_NORTH,
    act,
    cast,
    detail,
    ids,
    ok,
    open_incident,
    refused,
)

SMOKING = {"category": "cured_meat_smoking", "material": None}


async def test_a_day_in_the_district(harness: Harness) -> None:
    h = harness
    people = await cast(h)
    clock = h.clock

    # 10:00 a straw fire in 西南村; a second phone reports it 100 m away: one incident.
    fire = await open_incident(h, people.worker)
    r = await h.client.post(
        "/api/v1/reports",
        json=report_body(location=at(120.021, 30.02)),
        headers=people.worker,
    )
    assert r.json()["incident"]["id"] == fire
    clock.advance(timedelta(minutes=2))
    garbage = await open_incident(h, people.east_worker, village=EAST_SOUTH)  # 10:02
    clock.advance(timedelta(minutes=1))
    smoking = await open_incident(h, people.east_worker, village=EAST_SOUTH, spot=1, **SMOKING)
    clock.advance(timedelta(minutes=1))
    misplaced = await open_incident(h, people.north_worker, village=WEST_NORTH)  # 10:04

    # 10:05 西镇 acknowledges the fire; the wrong people are turned away, nothing changes.
    clock.advance(timedelta(minutes=1))
    await refused(h, people.east_officer, fire, "acknowledge", 404, "not-found")
    await refused(h, people.worker, fire, "acknowledge", 403, "forbidden")
    await refused(h, people.west_officer, fire, "arrive", 409, "invalid-transition")
    await ok(h, people.west_officer, fire, "acknowledge", note="马上出发")
    # The bureau's inspector acknowledges its own part, once.
    await ok(h, people.lead_officer, fire, "acknowledge")
    await refused(h, people.lead_officer, fire, "acknowledge", 409, "invalid-transition")

    # 10:20 on site; 10:40 penalised with a warning; the grid worker finds it still smoking.
    clock.advance(timedelta(minutes=15))
    await ok(h, people.west_officer, fire, "arrive")
    clock.advance(timedelta(minutes=20))
    await refused(h, people.west_officer, fire, "resolve", 422, "validation", outcome="penalized")
    warning = {"kind": "warning", "legal_basis": "《大气污染防治法》第一百一十九条"}
    await ok(h, people.west_officer, fire, "resolve", outcome="penalized", penalty=warning)
    await refused(h, people.north_worker, fire, "verify", 404, "not-found", passed=True)
    await refused(h, people.west_officer, fire, "verify", 403, "forbidden", passed=True)
    await ok(h, people.worker, fire, "verify", passed=False, note="余火未灭")
    clock.advance(timedelta(minutes=10))  # 10:50 put out for good, verified by the district
    await ok(h, people.west_officer, fire, "resolve", outcome="extinguished")
    closed = await ok(h, people.supervisor, fire, "verify", passed=True)
    assert (closed["status"], closed["report_count"], closed["version"]) == ("closed", 2, 9)

    # The garbage fire was a false report: the bureau returns it with a note, and the district
    # voids it (the assessed unit cannot).
    await refused(h, people.lead_officer, garbage, "return", 422, "validation")
    await refused(h, people.worker, garbage, "return", 404, "not-found", note="x")
    await refused(h, people.lead_officer, garbage, "void", 403, "forbidden", note="x")
    await ok(h, people.lead_officer, garbage, "return", note="系垃圾站正常作业")
    await ok(h, people.supervisor, garbage, "void", reason="false_report", note="核实为误报")

    # The 西北村 report was really in 东南村: the district moves it (10:50).
    r = await act(h, people.west_officer, misplaced, "reassign", cell_code=EAST_SOUTH)
    assert r.status_code == 403
    await ok(h, people.supervisor, misplaced, "reassign", cell_code=EAST_SOUTH, note="定位偏差")
    west_inbox = f"/api/v1/agencies/{WEST}/incidents"
    east_inbox = f"/api/v1/agencies/{EAST}/incidents"
    assert await ids(h, west_inbox, people.west_officer) == [fire]
    assert await ids(h, east_inbox, people.east_officer) == [misplaced, smoking, garbage]
    assert (
        await h.client.get(f"/api/v1/incidents/{misplaced}", headers=people.west_officer)
    ).status_code == 404

    # Overdue by the clock: at 10:50 the smoking (due 10:33) is late; the moved one is not
    # (due 11:05, 15 min after the move).
    overdue = await ids(h, f"/api/v1/cells/{DISTRICT}/incidents", people.supervisor, overdue="true")
    assert overdue == [smoking]
    clock.advance(timedelta(minutes=16))  # 11:06
    overdue = await ids(h, f"/api/v1/cells/{DISTRICT}/incidents", people.supervisor, overdue="true")
    assert overdue == [misplaced, smoking]
    await ok(h, people.east_officer, misplaced, "acknowledge")  # due 10:50 + 60 min now
    assert await ids(h, "/api/v1/incidents", people.supervisor, overdue="true") == [smoking]

    # The end of the day, counted by hand: 4 incidents, 1 closed, 1 rejected, 2 working.
    everything = f"/api/v1/cells/{DISTRICT}/incidents"
    assert len(await ids(h, everything, people.supervisor)) == 4
    assert await ids(h, everything, people.supervisor, status="closed") == [fire]
    assert await ids(h, everything, people.supervisor, status=["closed", "rejected"]) == [
        garbage,
        fire,
    ]
    assert await ids(h, f"/api/v1/cells/{WEST}/incidents", people.west_supervisor) == [fire]
    assert await ids(h, f"/api/v1/cells/{EAST}/incidents", people.east_supervisor) == [
        misplaced,
        smoking,
        garbage,
    ]
    assert await ids(
        h, "/api/v1/incidents", people.lead_officer, agency=LEAD, status="acknowledged"
    ) == [misplaced]
    assert await ids(h, "/api/v1/incidents", people.worker) == [fire]
    csv_rows = (
        (await h.client.get(everything, params={"format": "csv"}, headers=people.supervisor))
        .text.strip()
        .splitlines()
    )
    assert len(csv_rows) == 1 + 4

    timeline = (await detail(h, fire, people.supervisor))["timeline"]
    assert [(e["action"], e["to_status"]) for e in timeline] == [
        ("opened", "dispatched"),
        ("routed", None),
        ("report_added", None),
        ("acknowledge", "acknowledged"),
        ("acknowledge", "acknowledged"),
        ("arrive", "on_site"),
        ("resolve", "resolved"),
        ("verify", "on_site"),
        ("resolve", "resolved"),
        ("verify", "closed"),
    ]
    assert timeline[7]["note"] == "余火未灭"
