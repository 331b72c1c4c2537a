"""GET /cells/locate: which village, township and district a point is in."""

from __future__ import annotations

import pytest

from geo.crs import from_wgs84
from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    EAST_SOUTH,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    load_grid,
    login_headers,
)


async def test_locate_answers_all_three_levels(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    r = await harness.client.get("/api/v1/cells/locate?lon=120.02&lat=30.07", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "district": {"code": DISTRICT, "name": "西湖测试区"},
        "township": {"code": WEST, "name": "西镇"},
        "village": {"code": WEST_NORTH, "name": "西北村"},
    }


async def test_point_on_a_shared_border_goes_to_the_smallest_code(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "officer")
    # (120.05, 30.05) is the corner all four villages share.
    for _ in range(3):
        r = await harness.client.get("/api/v1/cells/locate?lon=120.05&lat=30.05", headers=headers)
        assert r.json()["village"]["code"] == WEST_SOUTH
    r = await harness.client.get("/api/v1/cells/locate?lon=120.07&lat=30.05", headers=headers)
    assert r.json()["village"]["code"] == EAST_SOUTH


async def test_gcj02_and_bd09_points_are_converted_before_locating(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "supervisor")
    # Just west of the township border in WGS-84; GCJ-02 shifts it hundreds of metres east.
    wgs = (120.0495, 30.02)
    for crs in ("gcj02", "bd09"):
        lon, lat = from_wgs84(*wgs, crs)
        assert lon > 120.05  # the raw coordinates would land in the east township
        r = await harness.client.get(
            f"/api/v1/cells/locate?lon={lon}&lat={lat}&crs={crs}", headers=headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["village"]["code"] == WEST_SOUTH


async def test_point_outside_every_village_is_outside_grid(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "admin")
    r = await harness.client.get("/api/v1/cells/locate?lon=121&lat=30.05", headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "https://burnban.dev/problems/outside-grid"


@pytest.mark.parametrize(
    "query",
    [
        "lon=200&lat=30",
        "lon=120&lat=-91",
        "lon=nan&lat=30",
        "lon=inf&lat=30",
        "lon=120&lat=30&crs=utm",
        "lat=30",
    ],
)
async def test_bad_coordinates_are_refused(harness: Harness, query: str) -> None:
    headers = await login_headers(harness, "admin")
    r = await harness.client.get(f"/api/v1/cells/locate?{query}", headers=headers)
    assert r.status_code == 422
    assert r.json()["type"] == "https://burnban.dev/problems/validation"
    assert r.json()["errors"]


async def test_locate_needs_authentication(harness: Harness) -> None:
    r = await harness.client.get("/api/v1/cells/locate?lon=120.02&lat=30.07")
    assert r.status_code == 401
    assert r.json()["type"] == "https://burnban.dev/problems/unauthorized"
