"""Reports join the open incident nearby and recent, or open a new, routed one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import TextClause, text

from app.categories import service as category_service
from app.categories.schemas import CategoryIn, MergeRule, Routing, TimeLimits
from app.incidents.models import AWAITING_SUPERVISOR, STATUSES, TERMINAL_STATUSES
from app.incidents.service import next_case_seq
from app.spatial.postgis import _NEAREST_OPEN_INCIDENT
from app.spatial.sqlite import _OPEN_INCIDENTS_IN_BOX
from app.spatial.store import OPEN_INCIDENT_STATUSES
from geo.crs import from_wgs84
from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    EAST,
    NOW,
    WEST,
    WEST_SOUTH,
    at,
    load_grid,
    login_headers,
    report_body,
)

# About 111 m per 0.001 degree of latitude.
ORIGIN = (120.02, 30.02)


async def _report(h: Harness, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    r = await h.client.post("/api/v1/reports", json=report_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _minutes_ago(minutes: int) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


async def test_a_report_within_radius_and_window_joins(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    first = await _report(harness, headers, observed_at=_minutes_ago(300))
    # ~278 m north, 5 h later (window 6 h, radius 300 m).
    second = await _report(harness, headers, location=at(120.02, 30.0225))
    assert second["incident"]["id"] == first["incident"]["id"]
    assert second["incident"]["is_new"] is False
    assert second["routed_to"] == first["routed_to"]
    admin = await login_headers(harness, "admin")
    r = await harness.client.get(f"/api/v1/incidents/{first['incident']['id']}", headers=admin)
    incident = r.json()
    assert incident["report_count"] == 2
    assert incident["version"] == 2
    assert r.headers["etag"] == '"2"'
    assert incident["location"] == {"lon": 120.02, "lat": 30.0225}  # where it was last seen
    assert [e["action"] for e in incident["timeline"]] == ["opened", "routed", "report_added"]
    assert [rep["id"] for rep in incident["reports"]] == [first["id"], second["id"]]


async def test_a_report_beyond_the_radius_opens_another(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    first = await _report(harness, headers)
    second = await _report(harness, headers, location=at(120.02, 30.0230))  # ~333 m
    assert second["incident"]["id"] != first["incident"]["id"]
    assert second["incident"]["is_new"] is True
    assert second["incident"]["case_number"] == f"{DISTRICT}-2026-000002"


async def test_a_report_outside_the_window_opens_another(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    first = await _report(harness, headers, observed_at=_minutes_ago(60 * 7))
    second = await _report(harness, headers, observed_at=_minutes_ago(10))
    assert second["incident"]["id"] != first["incident"]["id"]


async def test_another_category_or_a_closed_incident_is_not_joined(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    first = await _report(harness, headers)
    smoking = await _report(harness, headers, category="cured_meat_smoking", material=None)
    assert smoking["incident"]["id"] != first["incident"]["id"]
    async with harness.db.write() as session:
        conn = await session.connection()
        await conn.execute(
            text("UPDATE incidents SET status = 'closed' WHERE id = :id"),
            {"id": first["incident"]["id"]},
        )
    third = await _report(harness, headers)
    assert third["incident"]["id"] not in (first["incident"]["id"], smoking["incident"]["id"])


async def test_gcj02_point_lands_in_the_right_village(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    wgs = (120.0495, 30.02)  # just west of the township border
    lon, lat = from_wgs84(*wgs, "gcj02")
    assert lon > 120.05  # raw, the point would be in the east township
    body = await _report(harness, headers, location=at(lon, lat, "gcj02"))
    assert body["cell"]["village"]["code"] == WEST_SOUTH
    assert body["routed_to"][0] == {"agency": {"code": WEST, "name": "西镇"}, "role": "responsible"}
    assert body["submitted_location"] == {"lon": lon, "lat": lat, "crs": "gcj02"}
    assert abs(body["location"]["lon"] - wgs[0]) < 1e-9
    assert abs(body["location"]["lat"] - wgs[1]) < 1e-9


async def test_an_agency_gone_from_the_table_drops_out_of_the_routing(harness: Harness) -> None:
    """No API deletes an agency, but an operator may: reports go on, routed to the rest."""
    await load_grid(harness)
    async with harness.db.write() as session:
        conn = await session.connection()
        await conn.execute(text("DELETE FROM agencies WHERE code = 'urban-management'"))
    headers = await login_headers(harness, "grid_worker")
    body = await _report(harness, headers)
    assert body["incident"]["is_new"] is True
    assert body["routed_to"] == [{"agency": {"code": WEST, "name": "西镇"}, "role": "responsible"}]
    merged = await _report(harness, headers)
    assert merged["incident"]["id"] == body["incident"]["id"]
    assert merged["routed_to"] == body["routed_to"]


async def test_routing_follows_the_category_rule(harness: Harness) -> None:
    await load_grid(harness)
    async with harness.db.write() as session:
        rule = CategoryIn(
            name="露天焚烧",
            materials=["straw"],
            routing=Routing(lead=["urban-management"], cooperating=[EAST, WEST]),
            time_limits=TimeLimits(acknowledge_minutes=20, arrive_minutes=60, resolve_minutes=90),
            merge=MergeRule(radius_m=300, window_minutes=360),
        )
        await category_service.put_category(session, "open_burning", rule, None, NOW)
    headers = await login_headers(harness, "grid_worker")
    body = await _report(harness, headers)
    assert [(r["agency"]["code"], r["role"]) for r in body["routed_to"]] == [
        (WEST, "responsible"),
        ("urban-management", "lead"),
        (EAST, "cooperating"),
    ]
    admin = await login_headers(harness, "admin")
    r = await harness.client.get(f"/api/v1/incidents/{body['incident']['id']}", headers=admin)
    assert r.json()["due_at"] == "2026-11-20T02:20:00Z"
    assert r.json()["overdue"] is False
    harness.clock.advance(timedelta(minutes=21))
    r = await harness.client.get(f"/api/v1/incidents/{body['incident']['id']}", headers=admin)
    assert r.json()["overdue"] is True


async def test_outbox_events_are_written_with_the_report(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    first = await _report(harness, headers)
    await _report(harness, headers)
    async with harness.db.read() as session:
        conn = await session.connection()
        rows = (
            await conn.execute(text("SELECT type, incident_id FROM outbox_events ORDER BY id"))
        ).all()
    incident_id = first["incident"]["id"]
    assert [tuple(row) for row in rows] == [
        ("incident.created", incident_id),
        ("report.created", incident_id),
        ("incident.updated", incident_id),
        ("report.created", incident_id),
    ]


async def test_case_numbers_count_per_district_and_year(harness: Harness) -> None:
    async with harness.db.write() as session:
        for district, year, expected in [
            ("450305", 2026, 1),
            ("450305", 2026, 2),
            ("450305", 2027, 1),
            ("450311", 2026, 1),
            ("450305", 2026, 3),
        ]:
            assert await next_case_seq(harness.db, session, district, year) == expected


def test_the_merge_query_knows_every_open_status() -> None:
    """The spatial stores list the open statuses (for their index); they are the model's."""
    awaiting = set(AWAITING_SUPERVISOR)  # returned cases take no new reports
    assert set(OPEN_INCIDENT_STATUSES) == set(STATUSES) - set(TERMINAL_STATUSES) - awaiting


def _literal(value: Any) -> str:
    """A parameter as an SQL literal (EXPLAIN EXECUTE takes no bound parameters)."""
    return "'{}'".format(str(value).replace("'", "''"))


async def _plan(harness: Harness, statement: TextClause, parameters: Mapping[str, Any]) -> str:
    """The plan PostgreSQL keeps for `statement` prepared once, whatever its parameters (a
    generic plan), or SQLite's plan for the statement forced onto the partial index (which
    fails with "no query solution" if the query does not imply the index's WHERE)."""
    async with harness.db.read() as session:
        conn = await session.connection()
        if harness.backend == "postgis":
            names: list[str] = []

            def numbered(match: re.Match[str]) -> str:
                names.append(match[1])
                return f"${len(names)}"

            prepared = re.sub(r"(?<!:):(\w+)", numbered, statement.text)
            await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.exec_driver_sql(f"PREPARE probe AS {prepared}")
            args = ", ".join(_literal(parameters[name]) for name in names)
            rows = list(await conn.exec_driver_sql(f"EXPLAIN EXECUTE probe({args})"))
            await conn.exec_driver_sql("DEALLOCATE probe")  # PREPARE outlives the unit
        else:
            index = "FROM incidents INDEXED BY ix_incidents_open_lon_lat"
            explain = "EXPLAIN QUERY PLAN " + statement.text.replace("FROM incidents", index)
            rows = list(await conn.exec_driver_sql(explain, dict(parameters)))
    return "\n".join(str(row[-1]) for row in rows)


_OPEN_INDEX = {"postgis": "gix_incidents_open_location", "sqlite": "ix_incidents_open_lon_lat"}


async def test_the_merge_reads_only_open_incidents_near_the_point(harness: Harness) -> None:
    """The merge's search reads the partial index of the open incidents by place, so a busy
    morning's incidents are not all measured for each report. PostgreSQL plans a prepared
    statement once for any point and window (a generic plan): the index must serve that plan,
    which it only can when the query spells the open states as the index does."""
    window = {"seen_from": "2026-11-20 07:00:00+00", "seen_until": "2026-11-20 09:00:00+00"}
    if harness.backend == "sqlite":
        statement = _OPEN_INCIDENTS_IN_BOX
        box = {"min_lon": 120, "max_lon": 121, "min_lat": 30, "max_lat": 31}
        parameters = {"category": "open_burning", **box, **window}
    else:
        statement = _NEAREST_OPEN_INCIDENT
        parameters = {"category": "open_burning", "lon": 120.02, "lat": 30.02, "radius_m": 300}
        parameters |= window
    plan = await _plan(harness, statement, parameters)
    assert _OPEN_INDEX[harness.backend] in plan, plan
