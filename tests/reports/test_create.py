"""POST /reports: a report is stored, located, merged into an incident and routed."""

from __future__ import annotations

from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    REPORT_TABLES,
    WEST,
    WEST_SOUTH,
    count_rows,
    load_grid,
    login_headers,
    make_api_key,
    report_body,
)

PROBLEMS = "https://burnban.dev/problems/"


async def test_grid_worker_report_opens_a_routed_incident(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    r = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/reports/{body['id']}"
    assert "idempotent-replayed" not in r.headers
    assert body["category"] == "open_burning" and body["material"] == "straw"
    assert body["location"] == {"lon": 120.02, "lat": 30.02, "accuracy_m": 12.0}
    assert body["submitted_location"] == {"lon": 120.02, "lat": 30.02, "crs": "wgs84"}
    assert body["observed_at"] == "2026-11-20T01:50:00Z"
    assert body["received_at"] == "2026-11-20T02:00:00Z"
    assert body["reporter"]["name"] == "测试grid_worker"
    assert body["cell"] == {
        "district": {"code": DISTRICT, "name": "西湖测试区"},
        "township": {"code": WEST, "name": "西镇"},
        "village": {"code": WEST_SOUTH, "name": "西南村"},
    }
    incident = body["incident"]
    assert incident["is_new"] is True
    assert incident["status"] == "dispatched"
    assert incident["case_number"] == f"{DISTRICT}-2026-000001"
    assert body["routed_to"] == [
        {"agency": {"code": WEST, "name": "西镇"}, "role": "responsible"},
        {"agency": {"code": "urban-management", "name": "区城市管理局"}, "role": "lead"},
    ]
    assert body["photos"] == []


async def test_api_key_with_reports_write_may_report(harness: Harness) -> None:
    await load_grid(harness)
    headers = await make_api_key(harness, ["reports:write"])
    r = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["reporter"]["name"] == "第三方"


async def test_others_are_refused(harness: Harness) -> None:
    await load_grid(harness)
    r = await harness.client.post("/api/v1/reports", json=report_body())
    assert r.status_code == 401
    assert r.json()["type"] == PROBLEMS + "unauthorized"
    for role in ("officer", "supervisor", "admin"):
        headers = await login_headers(harness, role)
        r = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
        assert r.status_code == 403, role
        assert r.json()["type"] == PROBLEMS + "forbidden"
    headers = await make_api_key(harness, ["incidents:read", "grid:read"])
    r = await harness.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert r.status_code == 403
    counts = await count_rows(harness, *REPORT_TABLES)
    assert set(counts.values()) == {0}
