"""Incident lists by jurisdiction, cell and filter; keyset pages; done in the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from tests.conftest import Harness
from tests.factories import DISTRICT, NOW, make_api_key
from tests.incidents.support import (
    EAST,
    EAST_SOUTH,
    LEAD,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    Cast,
    cast,
    ids,
    ok,
    open_incident,
    report,
)

_DAY = {"from": "2026-11-20T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}


async def _district(h: Harness) -> tuple[Cast, dict[str, str]]:
    """Five incidents a minute apart: a, b in 西南村 (b cured meat), c in 西北村, d, e in 东南村."""
    people = await cast(h)
    made = {}
    plan: list[tuple[str, Any, str, dict[str, Any]]] = [
        ("a", people.worker, WEST_SOUTH, {}),
        ("b", people.worker, WEST_SOUTH, {"category": "cured_meat_smoking", "material": None}),
        ("c", people.north_worker, WEST_NORTH, {}),
        ("d", people.east_worker, EAST_SOUTH, {}),
        ("e", people.east_worker, EAST_SOUTH, {"spot": 1}),
    ]
    for name, who, village, extra in plan:
        made[name] = await open_incident(h, who, village=village, **extra)
        h.clock.advance(timedelta(minutes=1))
    return people, made


def _names(made: dict[str, str], found: list[str]) -> str:
    by_id = {v: k for k, v in made.items()}
    return "".join(by_id.get(i, "?") for i in found)


async def test_each_caller_lists_what_is_within_reach(harness: Harness) -> None:
    people, made = await _district(harness)

    async def names(headers: dict[str, str], path: str = "/api/v1/incidents", **p: Any) -> str:
        return _names(made, await ids(harness, path, headers, **p))

    assert await names(people.admin) == "edcba"  # newest first
    assert await names(people.supervisor) == "edcba"
    assert await names(people.west_supervisor) == "cba"
    assert await names(people.east_supervisor) == "ed"
    assert await names(people.worker) == "ba"
    assert await names(people.west_officer) == "cba"
    assert await names(people.east_officer) == "ed"
    assert await names(people.lead_officer) == "edcba"
    assert await names(await make_api_key(harness, ["incidents:read"], cell_code=WEST)) == "cba"
    assert await names(await make_api_key(harness, ["incidents:read"])) == "edcba"
    # A grid worker also sees the incidents of own reports elsewhere.
    await report(harness, people.worker, village=EAST_SOUTH)  # joins d
    assert await names(people.worker) == "dba"
    r = await harness.client.get(
        "/api/v1/incidents", headers=await make_api_key(harness, ["grid:read"])
    )
    assert r.status_code == 403


async def test_cells_list_everything_under_them(harness: Harness) -> None:
    people, made = await _district(harness)

    async def names(headers: dict[str, str], cell: str, **p: Any) -> str:
        return _names(made, await ids(harness, f"/api/v1/cells/{cell}/incidents", headers, **p))

    assert await names(people.supervisor, DISTRICT) == "edcba"
    assert await names(people.supervisor, WEST) == "cba"
    assert await names(people.supervisor, WEST_SOUTH) == "ba"
    assert await names(people.west_supervisor, WEST_NORTH) == "c"
    assert await names(people.worker, WEST) == "ba"  # what the worker may see of it
    assert await names(people.east_officer, DISTRICT) == "ed"
    keyed = await make_api_key(harness, ["incidents:read"], cell_code=EAST)
    assert await names(keyed, EAST_SOUTH) == "ed"
    # A cell outside the caller's jurisdiction is forbidden (its code is public); no such cell
    # is not found.
    for headers, cell in (
        (people.west_supervisor, EAST),
        (people.west_supervisor, DISTRICT),
        (people.east_supervisor, WEST_SOUTH),
        (keyed, WEST),
        (people.worker, WEST_NORTH),
        (people.worker, EAST),
        (people.east_officer, WEST),
    ):
        r = await harness.client.get(f"/api/v1/cells/{cell}/incidents", headers=headers)
        assert r.status_code == 403, (cell, r.text)
        assert r.json()["type"] == "https://burnban.dev/problems/forbidden"
        stats = await harness.client.get(
            f"/api/v1/cells/{cell}/stats", params=_DAY, headers=headers
        )
        assert stats.status_code == 403, (cell, stats.text)
    r = await harness.client.get("/api/v1/cells/999999/incidents", headers=people.admin)
    assert r.status_code == 404
    assert r.json()["type"] == "https://burnban.dev/problems/not-found"


async def test_filters(harness: Harness) -> None:
    people, made = await _district(harness)
    await ok(harness, people.west_officer, made["a"], "acknowledge")
    await ok(harness, people.east_officer, made["d"], "acknowledge")
    await ok(harness, people.east_officer, made["d"], "arrive")

    async def names(**p: Any) -> str:
        return _names(made, await ids(harness, "/api/v1/incidents", people.supervisor, **p))

    assert await names(status="dispatched") == "ecb"
    assert await names(status=["acknowledged", "on_site"]) == "da"
    assert await names(category="cured_meat_smoking") == "b"
    assert await names(**{"from": (NOW + timedelta(minutes=1)).isoformat()}) == "edcb"
    assert await names(**{"to": (NOW + timedelta(minutes=1)).isoformat()}) == "a"
    window = {"from": "2026-11-20T10:01:00+08:00", "to": "2026-11-20T10:03:00+08:00"}
    assert await names(**window) == "cb"
    assert await names(bbox="120.0,30.0,120.05,30.05") == "ba"
    assert await names(bbox="120.06,30.0,120.1,30.1") == "ed"
    # e is ~960 m east of d; 500 m around d finds d only, 1 km both.
    assert await names(near="120.07,30.02", radius_m=500) == "d"
    assert await names(near="120.07,30.02", radius_m=1000) == "ed"
    assert await names(near="120.074,30.02", radius_m=400) == "d"  # ~385 m from d, ~577 m from e
    assert await names(agency=EAST) == "ed"
    assert await names(agency=LEAD, status="dispatched") == "ecb"
    assert await names(order="asc") == "abcde"
    assert await names(overdue="true") == ""
    harness.clock.advance(timedelta(minutes=15))  # now +20: e, opened at +4, is past 15 min
    # a: acknowledged, due +60; d: on site, due +120; b: cured meat, due +1 +30.
    assert await names(overdue="true") == "ec"
    assert await names(overdue="false") == "dba"
    harness.clock.advance(timedelta(minutes=60))
    assert await names(overdue="true") == "ecba"


async def test_malformed_filters_are_refused(harness: Harness) -> None:
    people = await cast(harness)
    for params in (
        {"bbox": "1,2,3"},
        {"bbox": "120.1,30,120.0,30.1"},
        {"bbox": "a,b,c,d"},
        {"near": "120,30"},
        {"radius_m": "100"},
        {"near": "120,95", "radius_m": "100"},
        {"near": "120,30", "radius_m": "-1"},
        {"from": "2026-11-20T10:00:00"},
        {"status": "burning"},
        {"overdue": "maybe"},
        {"order": "sideways"},
        {"limit": "0"},
        {"limit": "501"},
        {"cursor": "not-a-cursor"},
        {"format": "xml"},
    ):
        r = await harness.client.get("/api/v1/incidents", params=params, headers=people.admin)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["type"] == "https://burnban.dev/problems/validation"


async def test_pages_are_stable_while_incidents_arrive(harness: Harness) -> None:
    people = await cast(harness)
    first = []
    for spot in (-1, 0, 1, 2):  # three in 西南村 at the same instant: ties broken by id
        first.append(await open_incident(harness, people.worker, spot=spot))
        if spot == 1:
            harness.clock.advance(timedelta(minutes=1))
    more = [
        await open_incident(harness, people.north_worker, village=WEST_NORTH, spot=s)
        for s in range(3)
    ]
    existing = first + more
    path = f"/api/v1/cells/{WEST}/incidents"
    seen: list[str] = []
    r = await harness.client.get(path, params={"limit": 3}, headers=people.supervisor)
    page = r.json()
    seen += [i["id"] for i in page["items"]]
    # New incidents arrive between pages, newer than everything listed.
    harness.clock.advance(timedelta(minutes=5))
    smoking = {"category": "cured_meat_smoking", "material": None}
    newer = [await open_incident(harness, people.worker, spot=s, **smoking) for s in range(2)]
    cursor = page["next_cursor"]
    while cursor:
        r = await harness.client.get(
            path, params={"limit": 3, "cursor": cursor}, headers=people.supervisor
        )
        assert r.status_code == 200, r.text
        seen += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
    assert sorted(seen) == sorted(existing)
    assert len(seen) == len(set(seen)) == 7
    everything = await ids(harness, path, people.supervisor, limit=2)
    assert everything[:2] == newer[::-1] or set(everything[:2]) == set(newer)
    ascending = await ids(harness, path, people.supervisor, limit=4, order="asc")
    assert ascending == everything[::-1]


@contextmanager
def _statements(h: Harness) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(h.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(h.db.engine.sync_engine, "before_cursor_execute", record)


async def test_a_page_costs_the_same_few_queries_whatever_its_size(harness: Harness) -> None:
    people = await cast(harness)
    for spot in range(3):
        await open_incident(harness, people.worker, spot=spot)
        await open_incident(harness, people.north_worker, village=WEST_NORTH, spot=spot)
    counts = []
    for limit in (1, 6):
        with _statements(harness) as seen:
            r = await harness.client.get(
                f"/api/v1/cells/{WEST}/incidents", params={"limit": limit}, headers=people.admin
            )
        assert len(r.json()["items"]) == limit
        counts.append(len(seen))
    assert counts[0] == counts[1]


async def test_a_township_page_is_read_from_its_index(harness: Harness) -> None:
    if harness.backend != "postgis":
        return
    people = await cast(harness)
    for spot in range(3):
        await open_incident(harness, people.worker, spot=spot)
    captured: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        if "FROM incidents" in str(args[2]) and "ORDER BY" in str(args[2]):
            captured.append((str(args[2]), args[3]))

    event.listen(harness.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        r = await harness.client.get(f"/api/v1/cells/{WEST}/incidents", headers=people.supervisor)
        assert r.status_code == 200
        cursor = r.json()["next_cursor"]
        assert cursor is None
        r = await harness.client.get(
            f"/api/v1/cells/{WEST}/incidents", params={"limit": 1}, headers=people.supervisor
        )
        await harness.client.get(
            f"/api/v1/cells/{WEST}/incidents",
            params={"limit": 1, "cursor": r.json()["next_cursor"]},
            headers=people.supervisor,
        )
    finally:
        event.remove(harness.db.engine.sync_engine, "before_cursor_execute", record)
    assert len(captured) == 3
    async with harness.db.read() as session:
        conn = await session.connection()
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in captured[1:]:
            plan = "\n".join(
                row[0] for row in await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            )
            # Read newest first from an index in list order (at scale, with a million
            # incidents, the planner picks ix_incidents_township_opened or opened_at).
            assert "Index Scan Backward using ix_incidents_" in plan, plan
            assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
