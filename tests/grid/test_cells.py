"""GET /api/v1/cells and /cells/{code}: the grid as users read it."""

from __future__ import annotations

from shapely.geometry import shape

from tests.conftest import Harness
from tests.factories import DISTRICT, EAST, WEST, WEST_NORTH, WEST_SOUTH, load_grid, login_headers


async def test_list_filters_by_level_and_parent(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    r = await harness.client.get("/api/v1/cells?level=township", headers=headers)
    assert r.status_code == 200
    assert [c["code"] for c in r.json()["items"]] == [WEST, EAST]
    assert r.json()["items"][0] == {
        "code": WEST,
        "name": "西镇",
        "level": "township",
        "parent_code": DISTRICT,
    }
    r = await harness.client.get(f"/api/v1/cells?parent={WEST}", headers=headers)
    assert [c["code"] for c in r.json()["items"]] == [WEST_SOUTH, WEST_NORTH]


async def test_list_pages_with_an_opaque_cursor(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "supervisor")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await harness.client.get("/api/v1/cells", params=params, headers=headers)).json()
        seen += [c["code"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(seen)


async def test_a_cursor_we_did_not_issue_is_refused(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "supervisor")
    r = await harness.client.get("/api/v1/cells?cursor=%%%", headers=headers)
    assert r.status_code == 422
    assert r.json()["type"] == "https://burnban.dev/problems/validation"


async def test_limit_is_bounded(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "supervisor")
    for limit in ("0", "501"):
        r = await harness.client.get(f"/api/v1/cells?limit={limit}", headers=headers)
        assert r.status_code == 422


async def test_cell_detail_has_children_and_area(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "officer")
    r = await harness.client.get(f"/api/v1/cells/{WEST}", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["children"] == [WEST_SOUTH, WEST_NORTH]
    assert body["parent_code"] == DISTRICT
    # 0.05° × 0.1° at 30°N: about 4.82 km × 11.09 km.
    assert 52 < body["area_km2"] < 55


async def test_cell_detail_as_geojson_feature(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "officer")
    for params, extra in (({"format": "geojson"}, {}), ({}, {"Accept": "application/geo+json"})):
        r = await harness.client.get(
            f"/api/v1/cells/{WEST_SOUTH}", params=params, headers=headers | extra
        )
        assert r.headers["content-type"] == "application/geo+json"
        feature = r.json()
        assert feature["type"] == "Feature"
        assert feature["properties"]["code"] == WEST_SOUTH
        assert shape(feature["geometry"]).bounds == (120.0, 30.0, 120.05, 30.05)


async def test_unknown_cell_is_not_found(harness: Harness) -> None:
    headers = await login_headers(harness, "officer")
    r = await harness.client.get("/api/v1/cells/999999", headers=headers)
    assert r.status_code == 404
    assert r.json()["type"] == "https://burnban.dev/problems/not-found"
