"""Tests for the synthetic grid generator and the bundled 七星区 demo grid."""

import json
from collections import Counter
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, mapping, shape

from geo.data import QIXING_PATH, load_qixing
from geo.data.make_qixing import build, dumps
from geo.grid import validate_grid
from geo.synthetic import _tessellate, random_points_in, synthetic_grid

QIXING_TOWNSHIPS = {
    "450305001": "七星街道",
    "450305002": "东江街道",
    "450305003": "穿山街道",
    "450305004": "漓东街道",
    "450305200": "朝阳乡",
    "450305400": "桂林华侨旅游经济区",
}


def _by_level(fc: dict[str, Any], level: str) -> list[dict[str, Any]]:
    return [f for f in fc["features"] if f["properties"]["level"] == level]


@pytest.fixture(scope="module")
def big() -> dict[str, Any]:
    # ~2 000 villages, serialised and parsed back exactly as a file import would see them.
    fc = synthetic_grid("450300", "测试市", (110.3, 25.3), 40, (30, 70), 40.0, seed=42)
    return dict(json.loads(json.dumps(fc)))


def test_two_thousand_village_grid_validates_after_json_round_trip(big: dict[str, Any]) -> None:
    villages = _by_level(big, "village")
    assert 1500 < len(villages) < 2500
    result = validate_grid(big["features"])
    assert result.ok, result.errors[:5]
    assert result.warnings == []
    assert len(result.cells) == len(big["features"])


def test_codes_follow_statistical_layout(big: dict[str, Any]) -> None:
    (district,) = _by_level(big, "district")
    assert district["properties"]["code"] == "450300"
    towns = _by_level(big, "township")
    assert [t["properties"]["code"] for t in towns] == [f"450300{i:03d}" for i in range(1, 41)]
    per_town = Counter(v["properties"]["parent_code"] for v in _by_level(big, "village"))
    assert set(per_town) == {t["properties"]["code"] for t in towns}
    assert all(30 <= n <= 70 for n in per_town.values())
    for v in _by_level(big, "village"):
        code, parent = v["properties"]["code"], v["properties"]["parent_code"]
        assert len(code) == 12 and code.startswith(parent) and code.isdigit()
    assert all(f["properties"]["synthetic"] is True for f in big["features"])
    assert "SYNTHETIC" in big["description"]


def test_coordinates_have_at_most_seven_decimals(big: dict[str, Any]) -> None:
    text = json.dumps(big["features"][:200])
    numbers = [
        tok
        for tok in text.replace("[", " ").replace("]", " ").replace(",", " ").split()
        if tok[:1].isdigit()
    ]
    assert numbers and all(len(n.partition(".")[2]) <= 7 for n in numbers)


def test_villages_tile_their_township_irregularly(big: dict[str, Any]) -> None:
    towns = {t["properties"]["code"]: shape(t["geometry"]) for t in _by_level(big, "township")}
    groups: dict[str, list[Any]] = {}
    for v in _by_level(big, "village"):
        groups.setdefault(v["properties"]["parent_code"], []).append(shape(v["geometry"]))
    for code, parts in list(groups.items())[:10]:
        union = shapely.union_all(parts)
        assert union.symmetric_difference(towns[code]).area < 1e-6 * towns[code].area
        assert sum(p.area for p in parts) == pytest.approx(towns[code].area, rel=1e-6)
    vertex_counts = {len(shapely.get_coordinates(g)) for parts in groups.values() for g in parts}
    assert len(vertex_counts) > 4  # not a grid of squares


def test_clipped_pieces_that_split_stay_multipolygons_and_tile() -> None:
    # A U-shaped area makes Voronoi cells straddle the gap; the split pieces are exclaves.
    u_shape = Polygon(
        [
            (0, 0),
            (0.03, 0),
            (0.03, 0.03),
            (0.02, 0.03),
            (0.02, 0.002),
            (0.01, 0.002),
            (0.01, 0.03),
            (0, 0.03),
        ]
    )
    kinds: Counter[str] = Counter()
    for seed in range(5):
        pieces = _tessellate(u_shape, 3, np.random.default_rng(seed), relax=0)
        kinds.update(p.geom_type for p in pieces)
        assert all(p.is_valid and not p.is_empty for p in pieces)
        assert sum(p.area for p in pieces) == pytest.approx(u_shape.area, rel=1e-6)
        features = [
            {
                "type": "Feature",
                "properties": {"code": "D", "name": "d", "level": "district", "parent_code": None},
                "geometry": mapping(u_shape),
            },
        ] + [
            {
                "type": "Feature",
                "properties": {
                    "code": f"T{i}",
                    "name": "t",
                    "level": "township",
                    "parent_code": "D",
                },
                "geometry": mapping(p),
            }
            for i, p in enumerate(pieces)
        ]
        assert validate_grid(features).ok
    assert kinds["MultiPolygon"] > 0


def test_deterministic_per_seed() -> None:
    args = ("450301", "甲区", (110.0, 25.0), 3, (4, 6), 5.0)
    assert synthetic_grid(*args, seed=1) == synthetic_grid(*args, seed=1)
    assert synthetic_grid(*args, seed=1) != synthetic_grid(*args, seed=2)


def test_named_townships_and_village_namer() -> None:
    fc = synthetic_grid(
        "450301",
        "甲区",
        (110.0, 25.0),
        [("001", "一街道"), ("450301200", "二乡")],
        3,
        5.0,
        village_name=lambda town, i: f"{town}-{i}",
    )
    towns = [(t["properties"]["code"], t["properties"]["name"]) for t in _by_level(fc, "township")]
    assert towns == [("450301001", "一街道"), ("450301200", "二乡")]
    names = [v["properties"]["name"] for v in _by_level(fc, "village")]
    assert names[:3] == ["450301001-1", "450301001-2", "450301001-3"]
    assert validate_grid(fc["features"]).ok


def test_bad_township_code_is_refused() -> None:
    with pytest.raises(ValueError):
        synthetic_grid("450301", "甲区", (110.0, 25.0), [("4503019", "x")], 3, 5.0)


def test_random_points_in() -> None:
    poly = Point(110.0, 25.0).buffer(0.05)
    pts = random_points_in(poly, 500, seed=3)
    assert len(pts) == 500
    assert all(poly.contains(Point(p)) for p in pts)
    assert pts == random_points_in(poly, 500, seed=3)
    assert pts != random_points_in(poly, 500, seed=4)
    assert random_points_in(poly, 0, seed=3) == []


# --- the bundled demo grid --------------------------------------------------------------------


def test_qixing_file_validates_and_has_the_real_township_codes() -> None:
    fc = load_qixing()
    assert fc["type"] == "FeatureCollection"
    assert fc["name"] and "SYNTHETIC" in fc["description"]
    assert "not real administrative boundaries" in fc["description"].lower()
    result = validate_grid(fc["features"])
    assert result.ok, result.errors
    (district,) = _by_level(fc, "district")
    assert (district["properties"]["code"], district["properties"]["name"]) == ("450305", "七星区")
    towns = {t["properties"]["code"]: t["properties"]["name"] for t in _by_level(fc, "township")}
    assert towns == QIXING_TOWNSHIPS
    per_town = Counter(v["properties"]["parent_code"] for v in _by_level(fc, "village"))
    assert set(per_town) == set(QIXING_TOWNSHIPS)
    assert all(4 <= n <= 8 for n in per_town.values())
    for v in _by_level(fc, "village"):
        p = v["properties"]
        assert len(p["code"]) == 12 and p["code"].startswith(p["parent_code"])
        suffix = "社区" if towns[p["parent_code"]].endswith("街道") else "村"
        assert p["name"].endswith(suffix)
    assert all(f["properties"]["synthetic"] is True for f in fc["features"])


def test_qixing_sits_around_the_real_district_centre() -> None:
    district = shape(_by_level(load_qixing(), "district")[0]["geometry"])
    c = district.centroid
    assert abs(c.x - 110.314) < 0.03 and abs(c.y - 25.258) < 0.03
    minx, miny, maxx, maxy = district.bounds
    assert 0.1 < maxy - miny < 0.25  # roughly 11-28 km across


def test_qixing_file_is_what_the_script_makes() -> None:
    assert QIXING_PATH.read_text(encoding="utf-8") == dumps(build())
