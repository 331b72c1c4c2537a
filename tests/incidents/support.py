"""Helpers for incident tests: a cast of callers, reports, actions and change detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    EAST,
    EAST_SOUTH,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    at,
    bearer,
    load_grid,
    make_user,
    report_body,
)

Headers = dict[str, str]
LEAD = "urban-management"


@dataclass
class Cast:
    """Everyone in the scripted district, as request headers."""

    worker: Headers  # grid worker of 西南村 (WEST_SOUTH)
    north_worker: Headers  # grid worker of 西北村 (WEST_NORTH)
    east_worker: Headers  # grid worker of 东南村 (EAST_SOUTH)
    west_officer: Headers  # 西镇 township government
    east_officer: Headers  # 东镇 township government
    lead_officer: Headers  # urban management bureau
    supervisor: Headers  # bound to the district
    west_supervisor: Headers  # bound to 西镇
    east_supervisor: Headers  # bound to 东镇
    admin: Headers


async def person(h: Harness, role: str, **binding: str) -> Headers:
    """Headers of a new user whose token outlives the clock moves of a test (three days)."""
    return bearer(h, await make_user(h, role, **binding), minutes=3 * 24 * 60)


async def cast(h: Harness) -> Cast:
    await load_grid(h)
    return Cast(
        worker=await person(h, "grid_worker", cell_code=WEST_SOUTH),
        north_worker=await person(h, "grid_worker", cell_code=WEST_NORTH),
        east_worker=await person(h, "grid_worker", cell_code=EAST_SOUTH),
        west_officer=await person(h, "officer", agency_code=WEST),
        east_officer=await person(h, "officer", agency_code=EAST),
        lead_officer=await person(h, "officer", agency_code=LEAD),
        supervisor=await person(h, "supervisor", cell_code=DISTRICT),
        west_supervisor=await person(h, "supervisor", cell_code=WEST),
        east_supervisor=await person(h, "supervisor", cell_code=EAST),
        admin=await person(h, "admin"),
    )


# Points in each village, far enough apart (> 300 m) not to merge when varied by `spot`.
VILLAGE_POINTS = {
    WEST_SOUTH: (120.02, 30.02),
    WEST_NORTH: (120.02, 30.07),
    EAST_SOUTH: (120.07, 30.02),
}


async def report(
    h: Harness, headers: Headers, village: str = WEST_SOUTH, spot: int = 0, **overrides: Any
) -> dict[str, Any]:
    """Post a report in the village (spot n is n × ~1 km east of the first); its answer."""
    lon, lat = VILLAGE_POINTS[village]
    body = report_body(location=at(lon + spot * 0.01, lat), **overrides)
    r = await h.client.post("/api/v1/reports", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def open_incident(h: Harness, headers: Headers, **kwargs: Any) -> str:
    """A new incident from one report; its id."""
    answer = await report(h, headers, **kwargs)
    assert answer["incident"]["is_new"], answer
    return str(answer["incident"]["id"])


async def act(
    h: Harness,
    headers: Headers,
    incident_id: str,
    action: str,
    if_match: str | None = None,
    **body: Any,
) -> httpx.Response:
    extra = {} if if_match is None else {"If-Match": if_match}
    return await h.client.post(
        f"/api/v1/incidents/{incident_id}/actions",
        json={"action": action, **body},
        headers={**headers, **extra},
    )


async def ok(
    h: Harness, headers: Headers, incident_id: str, action: str, **body: Any
) -> dict[str, Any]:
    r = await act(h, headers, incident_id, action, **body)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    answer: dict[str, Any] = r.json()
    return answer


async def detail(h: Harness, incident_id: str, headers: Headers) -> dict[str, Any]:
    r = await h.client.get(f"/api/v1/incidents/{incident_id}", headers=headers)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


@dataclass(frozen=True)
class Snapshot:
    version: int
    status: str
    events: int
    outbox: int


async def snapshot(h: Harness, incident_id: str) -> Snapshot:
    async with h.db.read() as session:
        conn = await session.connection()
        version, status = (
            await conn.execute(
                text("SELECT version, status FROM incidents WHERE id = :id"), {"id": incident_id}
            )
        ).one()
        events = (
            await conn.execute(
                text("SELECT count(*) FROM incident_events WHERE incident_id = :id"),
                {"id": incident_id},
            )
        ).scalar_one()
        outbox = (
            await conn.execute(
                text("SELECT count(*) FROM outbox_events WHERE incident_id = :id"),
                {"id": incident_id},
            )
        ).scalar_one()
    return Snapshot(int(version), str(status), int(events), int(outbox))


async def refused(
    h: Harness,
    headers: Headers,
    incident_id: str,
    action: str,
    status: int,
    slug: str,
    if_match: str | None = None,
    **body: Any,
) -> dict[str, Any]:
    """The action is refused with this status and problem type, and nothing changed."""
    before = await snapshot(h, incident_id)
    r = await act(h, headers, incident_id, action, if_match=if_match, **body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = r.json()
    assert problem["type"] == f"https://burnban.dev/problems/{slug}", problem
    assert await snapshot(h, incident_id) == before
    return problem


async def ids(h: Harness, path: str, headers: Headers, **params: Any) -> list[str]:
    """Ids of every item of the list at `path`, following cursors."""
    found: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await h.client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        found.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


__all__ = ["DISTRICT", "EAST", "EAST_SOUTH", "WEST", "WEST_NORTH", "WEST_SOUTH"]
