"""POST /api/v1/grid/import: all-or-nothing upsert of a district's cells."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from shapely.geometry import shape
from sqlmodel import select

from app.agencies.models import Agency
from app.grid.models import Cell
from geo.synthetic import synthetic_grid
from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    EAST,
    WEST,
    WEST_NORTH,
    WEST_SOUTH,
    box,
    collection,
    count_where,
    feature,
    load_grid,
    login_headers,
    small_grid,
)

PROBLEM = "https://burnban.dev/problems/"


async def _post(h: Harness, body: Any, **params: str) -> Any:
    headers = await login_headers(h, "admin")
    return await h.client.post("/api/v1/grid/import", json=body, params=params, headers=headers)


async def test_import_creates_cells_and_township_agencies(harness: Harness) -> None:
    r = await _post(harness, small_grid())
    assert r.status_code == 200, r.text
    assert r.json() == {
        "created": 7,
        "updated": 0,
        "unchanged": 0,
        "warnings": [],
        "dry_run": False,
    }
    assert await count_where(harness, Cell) == 7
    async with harness.db.read() as session:
        agencies = {
            a.code: (a.kind, a.name, a.cell_code) for a in await session.exec(select(Agency))
        }
    assert agencies[WEST] == ("township", "西镇", WEST)
    assert agencies[EAST] == ("township", "东镇", EAST)


async def test_reimport_is_an_upsert_by_code(harness: Harness) -> None:
    await _post(harness, small_grid())
    grid = small_grid()
    grid["features"][1]["properties"]["name"] = "西镇（新）"
    r = await _post(harness, grid)
    assert r.json()["created"] == 0
    assert r.json()["updated"] == 1
    assert r.json()["unchanged"] == 6
    headers = await login_headers(harness, "officer")
    cell = await harness.client.get(f"/api/v1/cells/{WEST}", headers=headers)
    assert cell.json()["name"] == "西镇（新）"
    async with harness.db.read() as session:
        assert (await session.get(Agency, WEST)).name == "西镇（新）"  # type: ignore[union-attr]


async def test_villages_can_be_added_under_an_existing_township(harness: Harness) -> None:
    grid = small_grid()
    grid["features"] = grid["features"][:4]  # district, townships, one west village
    assert (await _post(harness, grid)).json()["created"] == 4
    more = collection(
        feature(WEST_NORTH, "西北村", "village", WEST, box(120.0, 30.05, 120.05, 30.1))
    )
    r = await _post(harness, more)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    headers = await login_headers(harness, "supervisor")
    located = await harness.client.get("/api/v1/cells/locate?lon=120.01&lat=30.09", headers=headers)
    assert located.json()["village"]["code"] == WEST_NORTH


async def test_moving_a_border_moves_where_points_land(harness: Harness) -> None:
    await _post(harness, small_grid())
    grid = small_grid()
    # Shift the border between the west villages from lat 30.05 to 30.06.
    grid["features"][3]["geometry"] = box(120.0, 30.0, 120.05, 30.06)
    grid["features"][4]["geometry"] = box(120.0, 30.06, 120.05, 30.1)
    r = await _post(harness, grid)
    assert r.json()["updated"] == 2, r.text
    headers = await login_headers(harness, "supervisor")
    located = await harness.client.get(
        "/api/v1/cells/locate?lon=120.01&lat=30.055", headers=headers
    )
    assert located.json()["village"]["code"] == WEST_SOUTH


async def test_dry_run_validates_and_stores_nothing(harness: Harness) -> None:
    r = await _post(harness, small_grid(), dry_run="true")
    assert r.status_code == 200
    assert r.json()["created"] == 7 and r.json()["dry_run"] is True
    assert await count_where(harness, Cell) == 0


async def test_multipolygon_villages_are_accepted(harness: Harness) -> None:
    grid = small_grid()
    # The west township and its south village get an exclave in the east's south-east corner.
    exclave = box(120.09, 30.0, 120.1, 30.05)["coordinates"]
    grid["features"][1]["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [box(120.0, 30.0, 120.05, 30.1)["coordinates"], exclave],
    }
    grid["features"][3]["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [box(120.0, 30.0, 120.05, 30.05)["coordinates"], exclave],
    }
    east = [[120.05, 30.0], [120.09, 30.0], [120.09, 30.05], [120.1, 30.05], [120.1, 30.1]]
    grid["features"][2]["geometry"] = {
        "type": "Polygon",
        "coordinates": [east + [[120.05, 30.1], [120.05, 30.0]]],
    }
    grid["features"][5]["geometry"] = box(120.05, 30.0, 120.09, 30.05)
    r = await _post(harness, grid)
    assert r.status_code == 200, r.text
    headers = await login_headers(harness, "supervisor")
    located = await harness.client.get(
        "/api/v1/cells/locate?lon=120.095&lat=30.02", headers=headers
    )
    assert located.json()["village"]["code"] == WEST_SOUTH


def _broken(kind: str) -> tuple[dict[str, Any], int | None]:
    """A small grid broken one way, and the index of the feature the error names."""
    grid = small_grid()
    features = grid["features"]
    if kind == "self-intersection":
        features[3]["geometry"] = {
            "type": "Polygon",
            "coordinates": [
                [[120.0, 30.0], [120.05, 30.05], [120.05, 30.0], [120.0, 30.05], [120.0, 30.0]]
            ],
        }
        return grid, 3
    if kind == "too-few-points":
        features[3]["geometry"] = {
            "type": "Polygon",
            "coordinates": [[[120.0, 30.0], [120.05, 30.0], [120.0, 30.0]]],
        }
        return grid, 3
    if kind == "empty-geometry":
        features[3]["geometry"] = {"type": "Polygon", "coordinates": []}
        return grid, 3
    if kind == "not-a-polygon":
        features[3]["geometry"] = {"type": "Point", "coordinates": [120.02, 30.02]}
        return grid, 3
    if kind == "unknown-parent":
        features[3]["properties"]["parent_code"] = "330106009"
        return grid, 3
    if kind == "wrong-level-parent":
        features[3]["properties"]["parent_code"] = DISTRICT
        return grid, 3
    if kind == "duplicate-code":
        features.append(copy.deepcopy(features[6]))
        return grid, 7
    if kind == "outside-parent":
        features[3]["geometry"] = box(120.0, 30.0, 120.06, 30.05)  # ~960 m into the east
        return grid, None
    if kind == "overlapping-siblings":
        features[4]["geometry"] = box(120.0, 30.04, 120.05, 30.1)  # ~1.1 km over its sibling
        return grid, 4
    if kind == "outside-wgs84":
        features[0]["geometry"] = box(120.0, 30.0, 190.0, 30.1)
        return grid, 0
    if kind == "missing-code":
        del features[2]["properties"]["code"]
        return grid, 2
    raise AssertionError(kind)


BROKEN = [
    "self-intersection",
    "too-few-points",
    "empty-geometry",
    "not-a-polygon",
    "unknown-parent",
    "wrong-level-parent",
    "duplicate-code",
    "outside-parent",
    "overlapping-siblings",
    "outside-wgs84",
    "missing-code",
]


@pytest.mark.parametrize("kind", BROKEN)
async def test_a_broken_grid_is_refused_whole(harness: Harness, kind: str) -> None:
    grid, index = _broken(kind)
    r = await _post(harness, grid)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == PROBLEM + "grid-invalid"
    assert body["errors"], body
    assert all(set(e) >= {"feature", "code", "msg"} for e in body["errors"])
    if index is not None:
        assert index in [e["feature"] for e in body["errors"]], body["errors"]
    assert await count_where(harness, Cell) == 0
    assert await count_where(harness, Agency) == 1  # only the seeded urban-management bureau


async def test_a_broken_reimport_leaves_the_stored_grid_as_it_was(harness: Harness) -> None:
    await load_grid(harness)
    grid, _ = _broken("overlapping-siblings")
    grid["features"][1]["properties"]["name"] = "改名"
    assert (await _post(harness, grid)).status_code == 422
    headers = await login_headers(harness, "officer")
    r = await harness.client.get(f"/api/v1/cells/{WEST}", headers=headers)
    assert r.json()["name"] == "西镇"


@pytest.mark.parametrize(
    "body", [[], {"type": "Feature"}, {"type": "FeatureCollection", "features": []}, "text"]
)
async def test_a_body_that_is_no_feature_collection_is_refused(harness: Harness, body: Any) -> None:
    r = await _post(harness, body)
    assert r.status_code == 422
    assert r.json()["type"] in (PROBLEM + "grid-invalid", PROBLEM + "validation")
    assert await count_where(harness, Cell) == 0


async def test_only_admins_import(harness: Harness) -> None:
    await load_grid(harness)
    for role in ("grid_worker", "officer", "supervisor"):
        headers = await login_headers(harness, role)
        r = await harness.client.post("/api/v1/grid/import", json=small_grid(), headers=headers)
        assert r.status_code == 403, role
        assert r.json()["type"] == PROBLEM + "forbidden"
    r = await harness.client.post("/api/v1/grid/import", json=small_grid())
    assert r.status_code == 401


async def test_after_a_large_import_every_village_is_found_where_it_lies(
    harness: Harness,
) -> None:
    """Over 1 000 cells the import rebuilds PostGIS's spatial index: locate still finds each
    village at a point inside it."""
    grid = synthetic_grid("450399", "测试区", (110.3, 25.3), 4, 260, radius_km=25, seed=3)
    r = await _post(harness, grid)
    assert r.status_code == 200, r.text
    assert r.json()["created"] >= 1000
    headers = await login_headers(harness, "admin")
    villages = [f for f in grid["features"] if f["properties"]["level"] == "village"]
    for village in villages[::37]:
        point = shape(village["geometry"]).representative_point()
        located = await harness.client.get(
            f"/api/v1/cells/locate?lon={point.x}&lat={point.y}", headers=headers
        )
        assert located.json()["village"]["code"] == village["properties"]["code"]
