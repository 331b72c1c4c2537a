"""Reading reports and incidents back, within the caller's jurisdiction only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Harness
from tests.factories import (
    EAST,
    EAST_NORTH,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    at,
    bearer,
    load_grid,
    login_headers,
    make_api_key,
    make_user,
    report_body,
)


async def _report(h: Harness, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    r = await h.client.post("/api/v1/reports", json=report_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_who_may_read_a_report(harness: Harness) -> None:
    await load_grid(harness)
    reporter = await login_headers(harness, "grid_worker")
    created = await _report(harness, reporter)
    url = f"/api/v1/reports/{created['id']}"
    allowed = [
        reporter,
        await login_headers(harness, "admin"),
        await login_headers(harness, "officer", agency_code=WEST),
        await login_headers(harness, "officer", agency_code="urban-management"),
        await login_headers(harness, "supervisor", cell_code=WEST),
        await login_headers(harness, "supervisor", cell_code=WEST_SOUTH),
    ]
    for headers in allowed:
        r = await harness.client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == created
    denied = [
        await login_headers(harness, "grid_worker", cell_code=WEST_SOUTH),
        await login_headers(harness, "officer", agency_code=EAST),
        await login_headers(harness, "supervisor", cell_code=EAST),
        await make_api_key(harness, ["reports:write"]),
    ]
    for headers in denied:
        r = await harness.client.get(url, headers=headers)
        assert r.status_code == 404
        assert r.json()["type"] == "https://burnban.dev/problems/not-found"
    r = await harness.client.get("/api/v1/reports/nope", headers=allowed[1])
    assert r.status_code == 404
    assert (await harness.client.get(url)).status_code == 401


async def test_my_reports_newest_first_page_by_page(harness: Harness) -> None:
    await load_grid(harness)
    user = await make_user(harness, "grid_worker")
    mine = bearer(harness, user)
    other = await login_headers(harness, "grid_worker")
    ids = []
    for i in range(5):
        ids.append((await _report(harness, mine, location=at(120.01 + i * 0.01, 30.02)))["id"])
        await _report(harness, other)
        harness.clock.advance(timedelta(seconds=1))
    seen: list[str] = []
    cursor = None
    while True:
        query = "/api/v1/reports?mine=true&limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = await harness.client.get(query, headers=mine)
        assert r.status_code == 200, r.text
        seen += [item["id"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    r = await harness.client.get("/api/v1/reports", headers=mine)
    assert r.status_code == 422


async def test_who_may_read_an_incident(harness: Harness) -> None:
    await load_grid(harness)
    reporter = await login_headers(harness, "grid_worker", cell_code=WEST_NORTH)
    created = await _report(harness, reporter)  # reported from the next village
    url = f"/api/v1/incidents/{created['incident']['id']}"
    allowed = [
        reporter,
        await login_headers(harness, "grid_worker", cell_code=WEST_SOUTH),
        await login_headers(harness, "admin"),
        await login_headers(harness, "officer", agency_code=WEST),
        await login_headers(harness, "supervisor", cell_code=WEST),
        await make_api_key(harness, ["incidents:read"]),
        await make_api_key(harness, ["incidents:read"], cell_code=WEST),
    ]
    for headers in allowed:
        r = await harness.client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["reports"][0]["id"] == created["id"]
        assert r.json()["cell"]["village"]["code"] == WEST_SOUTH
    denied = [
        await login_headers(harness, "grid_worker", cell_code=EAST_NORTH),
        await login_headers(harness, "officer", agency_code=EAST),
        await login_headers(harness, "supervisor", cell_code=EAST),
        await make_api_key(harness, ["incidents:read"], cell_code=EAST),
        await make_api_key(harness, ["reports:write"]),
    ]
    for headers in denied:
        r = await harness.client.get(url, headers=headers)
        assert r.status_code == 404
    assert created["incident"]["id"]
    r = await harness.client.get(url, headers=allowed[2])
    body = r.json()
    assert body["assignments"][0] == {
        "agency": {"code": WEST, "name": "西镇"},
        "role": "responsible",
        "acknowledged_at": None,
        "arrived_at": None,
        "acknowledge_due_at": "2026-11-20T02:15:00Z",
        "arrive_due_at": "2026-11-20T03:00:00Z",
        "overdue": False,
        "late": False,
    }
    assert body["timeline"][0]["to_status"] == "dispatched"
    assert body["timeline"][0]["actor"]["name"] == "测试grid_worker"
