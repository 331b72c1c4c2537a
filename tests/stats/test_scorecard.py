"""The scorecard: every number checked against a count made by hand from the rows below.

NOW is 2026-11-20T02:00Z (10:00 in Beijing). The main period P is 1–20 November, China time:
[2026-11-01T00:00+08:00, 2026-11-21T00:00+08:00) = [10-31T16:00Z, 11-20T16:00Z).

| id | village | opened (UTC) | status | category | ack s | resolve s | notes |
| W1 | 西南 | 11-02 02:00 | closed | burning | 600 | 3600 | on time |
| W2 | 西南 | 11-02 17:00 (11-03 Beijing) | closed | burning | 1200 | 10800 | late, rework 1, |
|    |      |             |        |         |      |       | warning |
| W3 | 西北 | 11-05 02:00 | closed | burning | 300 | 6000 | on time, rework 2, fine 500 |
| W4 | 西北 | 11-05 06:00 | rejected | burning | 900 | — | |
| W5 | 西南 | 11-20 01:00 | dispatched | burning | — | — | due 01:15: overdue |
| W6 | 西南 | 11-19 02:00 | on_site | smoking | 1800 | — | due NOW+1 d |
| W7 | 西北 | 10-20 02:00 (before P) | dispatched | burning | — | — | overdue, not in P |
| E1 | 东南 | 11-08 02:00 | closed | smoking | 2400 | 60000 | on time (24 h), fine 1500.5 |
| E2 | 东南 | 11-12 02:00 | resolved | burning | 480 | 5400 | rework 1, due NOW+1 d |
| E3 | 东北 | 11-20 00:00 | acknowledged | burning | 720 | — | due 01:00: overdue |
| E4 | 东北 | 11-20 16:00 (= to) | closed | burning | 60 | 600 | not in P |
| E5 | 东北 | 10-31 16:00 (= from) | closed | burning | 1500 | 7800 | late |
| E6 | 东南 | 11-15 02:00 | rejected | burning | 3000 | — | |
| E7 | 东南 | 11-18 02:00 | on_site | burning | 60 | — | due NOW+1 d |
| E8 | 东南 | 10-25 02:00 (before P) | closed | burning | 60 | 600 | |
Closed and rejected incidents are due 15 min after opening, long past: never overdue; nor is a
resolved one (it waits for verification).

Reports (UTC): W1 at 11-02 01:50 and 01:55; W3 11-05 01:50; E1 11-08 01:50; E5 10-31 15:59
(before P; 23:59 on 10-31 in Beijing) and 10-31 16:00 (= from); E2 11-20 16:00 (= to, out);
W6 11-19 01:00.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    EAST,
    EAST_NORTH,
    EAST_SOUTH,
    NOW,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    load_grid,
    login_headers,
    make_api_key,
    problem_type,
)
from tests.stats.factories import make_incident, make_report

P = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}
LATER = NOW + timedelta(days=1)


async def _seed(h: Harness) -> None:
    await load_grid(h)
    ws, wn, es, en = WEST_SOUTH, WEST_NORTH, EAST_SOUTH, EAST_NORTH
    w1 = await make_incident(h, ws, "2026-11-02T02:00", "closed", acknowledge_s=600, resolve_s=3600)
    await make_incident(
        h, ws, "2026-11-02T17:00", "closed", acknowledge_s=1200, resolve_s=10800, rework=1,
        penalty=("warning", "0"),
    )  # fmt: skip
    w3 = await make_incident(
        h, wn, "2026-11-05T02:00", "closed", acknowledge_s=300, resolve_s=6000, rework=2,
        penalty=("fine", "500"),
    )  # fmt: skip
    await make_incident(h, wn, "2026-11-05T06:00", "rejected", acknowledge_s=900)
    await make_incident(h, ws, "2026-11-20T01:00", "dispatched")
    w6 = await make_incident(
        h, ws, "2026-11-19T02:00", "on_site", category="cured_meat_smoking", acknowledge_s=1800,
        due=LATER,
    )  # fmt: skip
    await make_incident(h, wn, "2026-10-20T02:00", "dispatched")
    e1 = await make_incident(
        h, es, "2026-11-08T02:00", "closed", category="cured_meat_smoking", acknowledge_s=2400,
        resolve_s=60000, penalty=("fine", "1500.5"),
    )  # fmt: skip
    e2 = await make_incident(
        h, es, "2026-11-12T02:00", "resolved", acknowledge_s=480, resolve_s=5400, rework=1,
        due=LATER,
    )  # fmt: skip
    await make_incident(
        h, en, "2026-11-20T00:00", "acknowledged", acknowledge_s=720, due=NOW - timedelta(hours=1)
    )
    await make_incident(h, en, "2026-11-20T16:00", "closed", acknowledge_s=60, resolve_s=600)
    e5 = await make_incident(
        h, en, "2026-10-31T16:00", "closed", acknowledge_s=1500, resolve_s=7800
    )
    await make_incident(h, es, "2026-11-15T02:00", "rejected", acknowledge_s=3000)
    await make_incident(h, es, "2026-11-18T02:00", "on_site", acknowledge_s=60, due=LATER)
    await make_incident(h, es, "2026-10-25T02:00", "closed", acknowledge_s=60, resolve_s=600)
    for incident, village, observed in (
        (w1, ws, "2026-11-02T01:50"),
        (w1, ws, "2026-11-02T01:55"),
        (w3, wn, "2026-11-05T01:50"),
        (e1, es, "2026-11-08T01:50"),
        (e5, en, "2026-10-31T15:59"),
        (e5, en, "2026-10-31T16:00"),
        (e2, es, "2026-11-20T16:00"),
        (w6, ws, "2026-11-19T01:00"),
    ):
        await make_report(h, incident, village, observed)


async def _stats(h: Harness, code: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = await h.client.get(f"/api/v1/cells/{code}/stats", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _child(code: str, name: str, **numbers: float | None) -> dict[str, Any]:
    return {"code": code, "name": name, **numbers}


@pytest.fixture
async def seeded(harness: Harness) -> Harness:
    await _seed(harness)
    return harness


async def test_district_scorecard_matches_the_hand_count(seeded: Harness) -> None:
    admin = await login_headers(seeded, "admin")
    body = await _stats(seeded, DISTRICT, admin, **P)
    assert body["cell"] == {"code": DISTRICT, "name": "西湖测试区", "level": "district"}
    assert body["from"] == "2026-10-31T16:00:00Z"
    assert body["to"] == "2026-11-20T16:00:00Z"
    assert body["reports"] == 6
    assert body["incidents"] == 12
    assert body["by_status"] == {
        "dispatched": 1,
        "acknowledged": 1,
        "on_site": 2,
        "resolved": 1,
        "returned": 0,
        "closed": 5,
        "rejected": 2,
    }
    assert body["by_category"] == {"cured_meat_smoking": 2, "open_burning": 10}
    assert body["closure_rate"] == 0.5  # 5 closed / (12 − 2 rejected)
    assert body["on_time_rate"] == 0.6  # W1, W3, E1 of 5 closed
    assert body["rework_rate"] == 0.8  # 1 + 2 + 1 failed verifications / 5 closed
    assert body["overdue_open"] == 3  # W5, W7, E3
    # 60 300 480 600 720 900 1200 1500 1800 2400 3000: ranks 5 and 9 of 0..10.
    assert body["acknowledge_seconds"] == {"median": 900, "p90": 2400}
    # 3600 5400 6000 7800 10800 60000: median between ranks 2 and 3, p90 between 4 and 5.
    assert body["resolve_seconds"] == {"median": 6900, "p90": 35400}
    assert body["penalties"] == {"warning": 1, "fine": 2, "fine_yuan": 2000.5}
    # Rejected (voided) cases are counted and left out of the closure rate.
    assert body["voided"] == 2
    assert body["returned"] == 0
    assert "voided" in body["rate_definitions"]["closure_rate"]
    assert body["children"] == [
        {"code": WEST, "name": "西镇", "incidents": 6, "on_time_rate": 2 / 3, "overdue_open": 2},
        {"code": EAST, "name": "东镇", "incidents": 6, "on_time_rate": 0.5, "overdue_open": 1},
    ]
    assert "series" not in body


async def test_township_scorecard_has_a_row_per_village(seeded: Harness) -> None:
    supervisor = await login_headers(seeded, "supervisor", cell_code=WEST)
    body = await _stats(seeded, WEST, supervisor, **P)
    assert (body["reports"], body["incidents"]) == (4, 6)
    assert body["by_status"] == {
        "dispatched": 1,
        "acknowledged": 0,
        "on_site": 1,
        "resolved": 0,
        "returned": 0,
        "closed": 3,
        "rejected": 1,
    }
    assert body["by_category"] == {"cured_meat_smoking": 1, "open_burning": 5}
    assert body["closure_rate"] == 0.6  # 3 / (6 − 1)
    assert body["on_time_rate"] == 2 / 3
    assert body["rework_rate"] == 1.0  # 3 / 3
    assert body["overdue_open"] == 2
    # 300 600 900 1200 1800 → rank 2; p90 at 3.6: 1200 + 0.6·600.
    assert body["acknowledge_seconds"]["median"] == 900
    assert body["acknowledge_seconds"]["p90"] == pytest.approx(1560)
    # 3600 6000 10800 → rank 1; p90 at 1.8: 6000 + 0.8·4800.
    assert body["resolve_seconds"]["median"] == 6000
    assert body["resolve_seconds"]["p90"] == pytest.approx(9840)
    assert body["penalties"] == {"warning": 1, "fine": 1, "fine_yuan": 500}
    assert body["children"] == [
        _child(WEST_SOUTH, "西南村", incidents=4, on_time_rate=0.5, overdue_open=1),
        _child(WEST_NORTH, "西北村", incidents=2, on_time_rate=1.0, overdue_open=1),
    ]


async def test_village_scorecard_has_no_children(seeded: Harness) -> None:
    admin = await login_headers(seeded, "admin")
    body = await _stats(seeded, EAST_NORTH, admin, **P)
    assert (body["reports"], body["incidents"]) == (1, 2)  # E3, E5; E4 opened at `to`
    assert body["by_status"]["acknowledged"] == 1 and body["by_status"]["closed"] == 1
    assert (body["closure_rate"], body["on_time_rate"], body["rework_rate"]) == (0.5, 0.0, 0.0)
    assert body["overdue_open"] == 1
    # Two values: median and p90 interpolate as percentile_cont does, bit for bit on both.
    assert body["acknowledge_seconds"] == {"median": 1110, "p90": 720 + (1500 - 720) * 0.9}
    assert body["resolve_seconds"] == {"median": 7800, "p90": 7800}
    assert body["penalties"] == {"warning": 0, "fine": 0, "fine_yuan": 0}
    assert body["children"] == []


async def test_an_empty_stretch_gives_zeros_and_nulls(seeded: Harness) -> None:
    """19 November in Beijing: only W6 opened; W7 is overdue, W5 and E3 were opened after."""
    admin = await login_headers(seeded, "admin")
    day = {"from": "2026-11-19T00:00:00+08:00", "to": "2026-11-20T00:00:00+08:00"}
    body = await _stats(seeded, DISTRICT, admin, **day)
    assert (body["reports"], body["incidents"], body["overdue_open"]) == (1, 1, 1)
    assert (body["closure_rate"], body["on_time_rate"], body["rework_rate"]) == (0.0, None, None)
    assert body["acknowledge_seconds"] == {"median": 1800, "p90": 1800}
    assert body["resolve_seconds"] == {"median": None, "p90": None}
    assert body["children"] == [
        {"code": WEST, "name": "西镇", "incidents": 1, "on_time_rate": None, "overdue_open": 1},
        {"code": EAST, "name": "东镇", "incidents": 0, "on_time_rate": None, "overdue_open": 0},
    ]
    body = await _stats(seeded, DISTRICT, admin, **{**day, "to": "2026-11-19T01:00:00+08:00"})
    assert (body["incidents"], body["by_category"]) == (
        0,
        {"cured_meat_smoking": 0, "open_burning": 0},
    )
    assert body["closure_rate"] is None


async def test_overdue_follows_the_clock(seeded: Harness) -> None:
    seeded.clock.advance(timedelta(days=2))  # W6 and E7 fall due too
    admin = await login_headers(seeded, "admin")
    body = await _stats(seeded, DISTRICT, admin, **P)
    # E2 is past due as well, but resolved: it waits for verification, not for the township.
    assert body["overdue_open"] == 5
    assert [child["overdue_open"] for child in body["children"]] == [3, 2]


async def test_durations_are_whole_seconds_between_whole_seconds(harness: Harness) -> None:
    await load_grid(harness)
    # 02:00:00.9 → 02:10:01.1 (600.2 s later) and 02:20:00.0 (1199.1 s later): counted from
    # 02:00:00 to 02:10:01 and to 02:20:00, 601 s and 1200 s, on both databases.
    opened = "2026-11-02T02:00:00.900"
    await make_incident(
        harness, WEST_SOUTH, opened, "resolved", acknowledge_s=600.2, resolve_s=1199.1
    )
    admin = await login_headers(harness, "admin")
    body = await _stats(harness, WEST_SOUTH, admin, **P)
    assert body["acknowledge_seconds"] == {"median": 601, "p90": 601}
    assert body["resolve_seconds"] == {"median": 1200, "p90": 1200}


def _series(body: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(p["start"], p["reports"], p["incidents"]) for p in body["series"]]


async def test_daily_series_counts_china_days_and_keeps_empty_ones(seeded: Harness) -> None:
    admin = await login_headers(seeded, "admin")
    days = {"from": "2026-11-02T00:00:00+08:00", "to": "2026-11-06T00:00:00+08:00"}
    body = await _stats(seeded, DISTRICT, admin, **days, interval="day")
    assert _series(body) == [
        ("2026-11-01T16:00:00Z", 2, 1),  # W1 and its two reports
        ("2026-11-02T16:00:00Z", 0, 1),  # W2: 11-02 17:00 UTC is 11-03 in Beijing
        ("2026-11-03T16:00:00Z", 0, 0),
        ("2026-11-04T16:00:00Z", 1, 2),  # W3, W4
    ]


async def test_weekly_series_starts_on_monday(seeded: Harness) -> None:
    admin = await login_headers(seeded, "admin")
    body = await _stats(seeded, DISTRICT, admin, **P, interval="week")
    assert _series(body) == [
        ("2026-10-25T16:00:00Z", 1, 1),  # week of Mon 10-26: Sunday 11-01 (E5)
        ("2026-11-01T16:00:00Z", 4, 5),  # W1 W2 W3 W4, E1 on Sunday 11-08
        ("2026-11-08T16:00:00Z", 0, 2),  # E2, E6 on Sunday 11-15
        ("2026-11-15T16:00:00Z", 1, 4),  # E7 W6 E3 W5
    ]


async def test_monthly_series_splits_at_beijing_midnight(seeded: Harness) -> None:
    admin = await login_headers(seeded, "admin")
    months = {"from": "2026-10-15T00:00:00+08:00", "to": P["to"]}
    body = await _stats(seeded, DISTRICT, admin, **months, interval="month")
    assert _series(body) == [
        ("2026-09-30T16:00:00Z", 1, 2),  # W7, E8; E5's report at 23:59 on 10-31
        ("2026-10-31T16:00:00Z", 6, 12),
    ]


async def test_who_may_read_which_scorecard(seeded: Harness) -> None:
    h = seeded
    cases = [
        (await login_headers(h, "supervisor", cell_code=WEST), {WEST: 200, WEST_SOUTH: 200,
                                                                 DISTRICT: 403, EAST: 403}),
        (await login_headers(h, "officer", agency_code=WEST), {WEST: 200, WEST_NORTH: 200,
                                                              DISTRICT: 403, EAST_SOUTH: 403}),
        (await login_headers(h, "officer"), {WEST: 403, DISTRICT: 403}),  # a district bureau
        (await login_headers(h, "grid_worker"), {WEST_SOUTH: 403}),
        (await make_api_key(h, ["incidents:read"], cell_code=EAST), {EAST: 200, EAST_NORTH: 200,
                                                                     DISTRICT: 403, WEST: 403}),
        (await make_api_key(h, ["incidents:read"]), {DISTRICT: 200}),
        (await make_api_key(h, ["grid:read"]), {DISTRICT: 403}),
        (await login_headers(h, "admin"), {DISTRICT: 200, "999999": 404}),
        ({}, {DISTRICT: 401}),
    ]  # fmt: skip
    for headers, expected in cases:
        for code, status in expected.items():
            r = await h.client.get(f"/api/v1/cells/{code}/stats", params=P, headers=headers)
            assert r.status_code == status, (headers, code, r.text)
            if status != 200:
                assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-01T00:00:00", "to": P["to"]},  # a time without an offset
        {"from": P["from"], "to": "2026-11-31"},  # no such day
        {"from": P["from"], "to": "20261121"},
        {"from": "yesterday", "to": P["to"]},
        {"from": "2026-11-21"},  # a day after now: the period until now would be reversed
        {"from": P["to"], "to": P["from"]},
        {"from": P["from"], "to": P["from"]},
        {"from": "2024-11-01T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"},
        {**P, "interval": "year"},
    ],
)
async def test_bad_parameters_are_refused(harness: Harness, params: dict[str, str]) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    r = await harness.client.get(f"/api/v1/cells/{DISTRICT}/stats", params=params, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == problem_type("validation")


async def test_two_years_are_allowed(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    two_years = {"from": "2024-11-21T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}
    body = await _stats(harness, DISTRICT, admin, **two_years, interval="month")
    assert body["incidents"] == 0 and len(body["series"]) == 25


async def test_plain_dates_are_china_days_and_no_period_is_this_month(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    path = f"/api/v1/cells/{DISTRICT}/stats"

    async def period(**params: str) -> tuple[str, str]:
        r = await harness.client.get(path, params=params, headers=admin)
        assert r.status_code == 200, r.text
        return r.json()["from"], r.json()["to"]

    # November in China: from its first midnight (UTC+8) to the end of the 30th.
    november = ("2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z")
    assert await period(**{"from": "2026-11-01", "to": "2026-11-30"}) == november
    # The clock reads 2026-11-20T02:00Z (10:00 in China): no period is the current month.
    assert await period() == november
    assert await period(**{"from": "2026-11-01"}) == (
        "2026-10-31T16:00:00Z",
        "2026-11-20T02:00:00Z",
    )
    assert await period(**{"to": "2026-11-10"}) == ("2026-10-31T16:00:00Z", "2026-11-10T16:00:00Z")
    mixed = {"from": "2026-11-02", "to": "2026-11-03T12:00:00+08:00"}
    assert await period(**mixed) == ("2026-11-01T16:00:00Z", "2026-11-03T04:00:00Z")


async def test_an_agencys_scorecard_takes_the_same_plain_dates(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    path = f"/api/v1/agencies/{WEST}/stats"
    november = ("2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z")
    for params in ({"from": "2026-11-01", "to": "2026-11-30"}, {}):
        r = await harness.client.get(path, params=params, headers=admin)
        assert r.status_code == 200, r.text
        assert (r.json()["from"], r.json()["to"]) == november
