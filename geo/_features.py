"""Parsing of raw GeoJSON grid features into cell shapes, collecting every problem."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

LEVELS: tuple[str, ...] = ("district", "township", "village")
CODE_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")
MAX_NAME_LEN = 200
POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class CellShape:
    """One grid cell: identity, place in the hierarchy and WGS-84 boundary."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geometry: Polygon | MultiPolygon


@dataclass
class ParsedFeature:
    """What could be read from one feature; `cell` is set only when nothing was wrong."""

    code: str | None
    problems: list[str]
    cell: CellShape | None = None


def _is_number(v: object) -> bool:
    # bool is an int subclass but `true` is never a coordinate.
    return isinstance(v, int | float) and not isinstance(v, bool)


def _ring_problem(ring: object, where: str) -> str | None:
    if not isinstance(ring, list | tuple):
        return f"malformed coordinates: {where} is not an array of positions"
    for pos in ring:
        if not isinstance(pos, list | tuple) or len(pos) not in (2, 3):
            return f"malformed coordinates: {where} has a position that is not [lon, lat]"
        if not all(_is_number(v) for v in pos):
            return f"malformed coordinates: {where} has a non-numeric coordinate"
        lon, lat = pos[0], pos[1]
        if not (math.isfinite(lon) and math.isfinite(lat) and all(map(math.isfinite, pos))):
            return f"non-finite coordinate (NaN or infinity) in {where}"
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            return (
                f"coordinate ({lon}, {lat}) in {where} is outside WGS-84 ranges "
                "(lon -180..180, lat -90..90)"
            )
    if len(ring) < 4:
        return f"too few points in {where}: {len(ring)}, a ring needs at least 4"
    if list(ring[0][:2]) != list(ring[-1][:2]):
        return f"{where} is not closed (first and last positions differ)"
    return None


def _polygon_problem(rings: object, where: str) -> str | None:
    if not isinstance(rings, list | tuple):
        return f"malformed coordinates: {where} is not an array of rings"
    for i, ring in enumerate(rings):
        problem = _ring_problem(ring, f"{where} ring {i}")
        if problem:
            return problem
    return None


def _geometry_problem(geom: Any) -> str | None:
    if geom is None:
        return "geometry missing"
    if not isinstance(geom, Mapping):
        return "geometry is not an object"
    gtype = geom.get("type")
    if gtype not in POLYGONAL:
        return f"non-polygon geometry (type {gtype!r}); expected Polygon or MultiPolygon"
    coords = geom.get("coordinates")
    if coords is None:
        return "malformed coordinates: coordinates missing"
    if not isinstance(coords, list | tuple):
        return "malformed coordinates: coordinates is not an array"
    if not coords:
        return "empty geometry"
    if gtype == "Polygon":
        return _polygon_problem(coords, "polygon")
    for i, poly in enumerate(coords):
        if isinstance(poly, list | tuple) and not poly:
            return f"empty geometry: polygon {i} of the MultiPolygon has no rings"
        problem = _polygon_problem(poly, f"polygon {i}")
        if problem:
            return problem
    return None


def _build_geometry(geom: Any, problems: list[str]) -> Polygon | MultiPolygon | None:
    problem = _geometry_problem(geom)
    if problem:
        problems.append(problem)
        return None
    try:
        built = shapely.force_2d(shape(geom))
    except Exception as exc:  # shapely raises several types on bad input; all mean "malformed"
        problems.append(f"malformed coordinates: {exc}")
        return None
    if built.is_empty:
        problems.append("empty geometry")
        return None
    if not isinstance(built, Polygon | MultiPolygon):
        problems.append(f"non-polygon geometry ({built.geom_type})")
        return None
    reason = shapely.is_valid_reason(built)
    if reason != "Valid Geometry":
        problems.append(f"invalid geometry: {reason}")
        return None
    return built


def _code(props: Mapping[str, Any], problems: list[str]) -> str | None:
    if "code" not in props or props["code"] is None:
        problems.append("code missing")
        return None
    code = props["code"]
    if not isinstance(code, str):
        problems.append(f"code must be a string, got {type(code).__name__}")
        return None
    if not CODE_RE.match(code):
        problems.append(
            f"code {code!r} is malformed: expected 1-40 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
        return None
    return code


def _name(props: Mapping[str, Any], problems: list[str]) -> str | None:
    name = props.get("name")
    if name is None:
        problems.append("name missing")
    elif not isinstance(name, str):
        problems.append(f"name must be a string, got {type(name).__name__}")
    elif not name.strip():
        problems.append("name is empty")
    elif len(name) > MAX_NAME_LEN:
        problems.append(f"name is too long: {len(name)} characters, at most {MAX_NAME_LEN}")
    else:
        return name
    return None


def _level_and_parent(
    props: Mapping[str, Any], problems: list[str]
) -> tuple[str | None, str | None]:
    level = props.get("level")
    parent = props.get("parent_code")
    if level not in LEVELS:
        problems.append(f"level {level!r} is not one of {', '.join(LEVELS)}")
        return None, None
    assert isinstance(level, str)
    if level == "district":
        if parent is not None:
            problems.append(f"parent_code must be null for a district, got {parent!r}")
        return level, None
    if not isinstance(parent, str) or not parent:
        problems.append(f"parent_code must be a non-empty string for a {level}, got {parent!r}")
        return level, None
    return level, parent


def parse_feature(raw: object) -> ParsedFeature:
    """Read one raw feature, recording every problem found rather than stopping at the first."""
    if not isinstance(raw, Mapping):
        return ParsedFeature(None, ["feature is not an object"])
    problems: list[str] = []
    if raw.get("type") != "Feature":
        problems.append(f"type must be 'Feature', got {raw.get('type')!r}")
    props = raw.get("properties")
    if not isinstance(props, Mapping):
        problems.append("properties missing" if props is None else "properties is not an object")
        props = {}
        code = name = level = parent = None
    else:
        code = _code(props, problems)
        name = _name(props, problems)
        level, parent = _level_and_parent(props, problems)
    geometry = _build_geometry(raw.get("geometry"), problems) if "geometry" in raw else None
    if "geometry" not in raw:
        problems.append("geometry missing")
    parsed = ParsedFeature(code, problems)
    if not problems and code and name and level and geometry is not None:
        parsed.cell = CellShape(code, name, level, parent, geometry)
    return parsed
