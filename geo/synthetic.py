"""Synthetic irregular three-level grids (district > townships > villages) for demos and tests."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon

# Output is rounded to 7 decimals (~1 cm); building on the same grid keeps rounding from
# creating overlaps or invalid rings that the validator would then have to forgive.
GRID_SIZE = 1e-7
DECIMALS = 7
_KM_PER_DEG = 6_371.0088 * math.pi / 180.0
_DISTRICT_VERTICES = 96
_LLOYD_STEPS = 2


def random_points_in(geometry: shapely.Geometry, n: int, seed: int) -> list[tuple[float, float]]:
    """n uniformly random points strictly inside a polygonal geometry (deterministic by seed)."""
    rng = np.random.default_rng(seed)
    return [(float(x), float(y)) for x, y in _sample(geometry, n, rng)]


def _sample(geometry: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    if n <= 0:
        return np.empty((0, 2))
    if geometry.is_empty or geometry.area <= 0:
        raise ValueError("cannot sample points in an empty or zero-area geometry")
    minx, miny, maxx, maxy = geometry.bounds
    fill = geometry.area / ((maxx - minx) * (maxy - miny))
    shapely.prepare(geometry)
    found: list[np.ndarray] = []
    have = 0
    while have < n:
        # Rejection sampling in the bounding box, sized so one round usually suffices.
        batch = int((n - have) / fill * 1.3) + 16
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(batch, 2))
        inside = xy[shapely.contains_xy(geometry, xy[:, 0], xy[:, 1])]
        found.append(inside)
        have += len(inside)
    return np.concatenate(found)[:n]


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    # Clipping can leave stray lines or points where cells touch; only the areas are cells.
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)


def _district_shape(
    center: tuple[float, float], radius_km: float, rng: np.random.Generator
) -> shapely.Geometry:
    lon0, lat0 = center
    t = np.linspace(0.0, 2.0 * math.pi, _DISTRICT_VERTICES, endpoint=False)
    # A few low harmonics of random phase give a blob-like outline, never self-intersecting
    # because the radius stays positive (sum of amplitudes < 0.5).
    r = np.ones_like(t)
    for k, amp in ((2, 0.16), (3, 0.12), (5, 0.07), (9, 0.04)):
        r += amp * rng.uniform(0.5, 1.0) * np.cos(k * t + rng.uniform(0.0, 2.0 * math.pi))
    r *= radius_km
    x = lon0 + r * np.cos(t) / (_KM_PER_DEG * math.cos(math.radians(lat0)))
    y = lat0 + r * np.sin(t) / _KM_PER_DEG
    return shapely.set_precision(Polygon(np.column_stack([x, y])), GRID_SIZE)


def _tessellate(
    area: shapely.Geometry, n: int, rng: np.random.Generator, relax: int
) -> list[shapely.Geometry]:
    """Split `area` into n irregular Voronoi pieces that tile it exactly."""
    if n == 1:
        return [area]
    pts = _sample(area, n, rng)
    shapely.prepare(area)
    for step in range(relax + 1):
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=area, ordered=True)
        )
        if step == relax:
            return [_polygonal(p) for p in _clip(cells, area)]
        pieces = shapely.intersection(cells, area)
        # Lloyd relaxation evens out sizes a little, like real villages, but keeps seeds inside.
        cent = shapely.get_coordinates(shapely.centroid(pieces))
        ok = shapely.contains_xy(area, cent[:, 0], cent[:, 1])
        pts = np.where(ok[:, None], cent, pts)
    raise AssertionError("unreachable")


def _clip(cells: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    # Snap-rounded overlay is slow, so only cells crossing the boundary get it; interior
    # cells just snap their vertices, which neighbours share, so they still tile.
    inside = shapely.contains_properly(area, cells)
    out = np.empty(len(cells), dtype=object)
    out[inside] = shapely.set_precision(cells[inside], GRID_SIZE)
    out[~inside] = shapely.intersection(cells[~inside], area, grid_size=GRID_SIZE)
    return out


def _township_list(
    district_code: str, district_name: str, townships: Sequence[tuple[str, str]] | int
) -> list[tuple[str, str]]:
    if isinstance(townships, int):
        return [
            (f"{district_code}{i:03d}", f"{district_name}第{i}乡") for i in range(1, townships + 1)
        ]
    out = []
    for code, name in townships:
        full = code if len(code) > 3 else f"{district_code}{code}"
        if not (full.startswith(district_code) and len(full) == len(district_code) + 3):
            raise ValueError(f"township code {code!r} is not {district_code} + 3 digits")
        out.append((full, name))
    return out


def _rounded_geojson(geoms: list[shapely.Geometry]) -> list[dict[str, Any]]:
    arr = np.array(geoms, dtype=object)
    arr = shapely.transform(arr, lambda c: np.round(c, DECIMALS))
    return [json.loads(s) for s in shapely.to_geojson(arr)]


def _feature(
    code: str, name: str, level: str, parent: str | None, geometry: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {
            "code": code,
            "name": name,
            "level": level,
            "parent_code": parent,
            "synthetic": True,
        },
        "geometry": geometry,
    }


def synthetic_grid(
    district_code: str,
    district_name: str,
    center: tuple[float, float],
    townships: Sequence[tuple[str, str]] | int,
    villages_per_township: int | tuple[int, int],
    radius_km: float,
    seed: int = 0,
    village_name: Callable[[str, int], str] | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of an irregular, exactly tiling three-level grid.

    `townships` is a count or (code, name) pairs, codes either full (district + 3 digits) or
    just the 3-digit suffix. `villages_per_township` is a count or an inclusive (min, max)
    range. `village_name(township_code, i)` names village i (1-based) of a township; by
    default "<township name>第i村". Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    town_list = _township_list(district_code, district_name, townships)
    district = _district_shape(center, radius_km, rng)
    town_shapes = _tessellate(district, len(town_list), rng, relax=_LLOYD_STEPS)
    if isinstance(villages_per_township, int):
        counts = np.full(len(town_list), villages_per_township)
    else:
        low, high = villages_per_township
        counts = rng.integers(low, high + 1, size=len(town_list))
    village_shapes: list[shapely.Geometry] = []
    village_meta: list[tuple[str, str, str]] = []
    for (t_code, t_name), t_shape, count in zip(town_list, town_shapes, counts, strict=True):
        pieces = _tessellate(t_shape, int(count), rng, relax=1)
        for i, piece in enumerate(pieces, start=1):
            name = village_name(t_code, i) if village_name else f"{t_name}第{i}村"
            village_meta.append((f"{t_code}{i:03d}", name, t_code))
            village_shapes.append(piece)
    geo = _rounded_geojson([district, *town_shapes, *village_shapes])
    features = [_feature(district_code, district_name, "district", None, geo[0])]
    for (t_code, t_name), g in zip(town_list, geo[1 : 1 + len(town_list)], strict=True):
        features.append(_feature(t_code, t_name, "township", district_code, g))
    for (v_code, v_name, t_code), g in zip(village_meta, geo[1 + len(town_list) :], strict=True):
        features.append(_feature(v_code, v_name, "village", t_code, g))
    return {
        "type": "FeatureCollection",
        "name": district_name,
        "description": (
            f"SYNTHETIC grid for {district_name} ({district_code}): boundaries are generated, "
            "not real administrative boundaries."
        ),
        "features": features,
    }
