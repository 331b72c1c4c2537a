"""Verification: by a supervisor (independent) or a grid worker of the incident's village."""

from __future__ import annotations

from tests.conftest import Harness
from tests.incidents.support import (
    DISTRICT,
    WEST_NORTH,
    Cast,
    cast,
    ok,
    open_incident,
    refused,
)

PERIOD = {"from": "2026-11-19T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


async def _resolved(harness: Harness, people: Cast, **where: object) -> str:
    reporter = people.north_worker if where.get("village") == WEST_NORTH else people.worker
    incident = await open_incident(harness, reporter, **where)
    for action in ("acknowledge", "arrive"):
        await ok(harness, people.west_officer, incident, action)
    await ok(harness, people.west_officer, incident, "resolve", outcome="extinguished")
    return incident


async def test_each_incident_says_who_verified_it_and_the_scorecard_counts_them(
    harness: Harness,
) -> None:
    people = await cast(harness)
    by_worker = await _resolved(harness, people)
    by_supervisor = await _resolved(harness, people, village=WEST_NORTH)
    # A grid worker of another village may not verify; nothing is stored.
    await refused(harness, people.worker, by_supervisor, "verify", 404, "not-found", passed=True)
    await refused(harness, people.east_worker, by_worker, "verify", 404, "not-found", passed=True)
    worker_failed = await ok(harness, people.worker, by_worker, "verify", passed=False)
    assert worker_failed["verified_by"] == "village_worker"
    await ok(harness, people.west_officer, by_worker, "resolve", outcome="extinguished")
    closed = await ok(harness, people.worker, by_worker, "verify", passed=True)
    assert (closed["status"], closed["verified_by"]) == ("closed", "village_worker")
    closed = await ok(harness, people.west_supervisor, by_supervisor, "verify", passed=True)
    assert (closed["status"], closed["verified_by"]) == ("closed", "supervisor")

    r = await harness.client.get(
        f"/api/v1/cells/{DISTRICT}/stats", params=PERIOD, headers=people.supervisor
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["by_status"]["closed"], body["closed_verified_by_village_worker"]) == (2, 1)
