"""Validation of a three-level administrative grid (district > township > village) in GeoJSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping

from geo._features import LEVELS, CellShape, parse_feature
from geo.distance import EARTH_RADIUS_M, metres_to_degrees

__all__ = [
    "LEVELS",
    "PARENT_LEVEL",
    "CellShape",
    "GridError",
    "GridValidation",
    "feature_of",
    "validate_grid",
]

PARENT_LEVEL: Mapping[str, str | None] = MappingProxyType(
    {"district": None, "township": "district", "village": "township"}
)
_NO_CELLS: Mapping[str, CellShape] = MappingProxyType({})
_M_PER_DEG = EARTH_RADIUS_M * np.pi / 180.0


@dataclass(frozen=True)
class GridError:
    """One refusal; `feature` indexes the submitted list, None when about an existing cell."""

    feature: int | None
    code: str | None
    msg: str


@dataclass
class GridValidation:
    """Outcome of validate_grid: submitted cells parents-first, errors and warnings."""

    cells: list[CellShape]
    errors: list[GridError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class _Entry:
    cell: CellShape
    feature: int | None  # None: an existing cell that the submission does not override


def _tolerance_deg(geom: shapely.Geometry, tolerance_m: float) -> float:
    # The box's most poleward latitude gives the widest degree span for the tolerance.
    minx, miny, maxx, maxy = geom.bounds
    return metres_to_degrees(tolerance_m, max(abs(miny), abs(maxy)))


def _who(entry: _Entry) -> str:
    if entry.feature is None:
        return f"existing {entry.cell.level} {entry.cell.code}"
    return f"{entry.cell.level} {entry.cell.code} (feature {entry.feature})"


def _check_parents(
    submitted: dict[str, _Entry],
    merged: Mapping[str, _Entry],
    failed_codes: set[str],
    errors: list[GridError],
) -> None:
    for code, entry in submitted.items():
        cell = entry.cell
        if cell.parent_code is None:
            continue
        parent = merged.get(cell.parent_code)
        if parent is None:
            if cell.parent_code not in failed_codes:
                errors.append(
                    GridError(
                        entry.feature,
                        code,
                        (f"unknown parent {cell.parent_code!r}: not in the file nor in the grid"),
                    )
                )
            continue
        want = PARENT_LEVEL[cell.level]
        if parent.cell.level != want:
            errors.append(
                GridError(
                    entry.feature,
                    code,
                    (
                        f"parent at the wrong level: a {cell.level}'s parent must be a {want}, "
                        f"but {cell.parent_code} is a {parent.cell.level}"
                    ),
                )
            )


def _check_containment(
    submitted: dict[str, _Entry],
    merged: Mapping[str, _Entry],
    tolerance_m: float,
    errors: list[GridError],
) -> None:
    pairs: list[tuple[_Entry, _Entry]] = []
    for entry in merged.values():
        parent_code = entry.cell.parent_code
        if parent_code is None or parent_code not in merged:
            continue
        parent = merged[parent_code]
        if entry.feature is None and parent.feature is None:
            continue  # neither side changes: already accepted earlier
        if parent.cell.level != PARENT_LEVEL[entry.cell.level]:
            continue  # reported as a wrong-level parent
        pairs.append((entry, parent))
    if not pairs:
        return
    buffered: dict[str, shapely.Geometry] = {}
    for _, parent in pairs:
        if parent.cell.code not in buffered:
            geom = parent.cell.geometry
            grown = shapely.buffer(geom, _tolerance_deg(geom, tolerance_m))
            shapely.prepare(grown)
            buffered[parent.cell.code] = grown
    children = np.array([child.cell.geometry for child, _ in pairs], dtype=object)
    parents = np.array([buffered[parent.cell.code] for _, parent in pairs], dtype=object)
    inside = shapely.covers(parents, children)
    for (child, parent), ok in zip(pairs, inside, strict=True):
        if ok:
            continue
        outside = shapely.difference(child.cell.geometry, parent.cell.geometry)
        msg = (
            f"{_who(child)} is not inside its parent {_who(parent)}: it sticks out by more "
            f"than {tolerance_m:g} m (about {_area_m2(outside):.0f} m² outside)"
        )
        errors.append(GridError(child.feature, child.cell.code, msg))


def _area_m2(geom: shapely.Geometry) -> float:
    if geom.is_empty:
        return 0.0
    lat = (geom.bounds[1] + geom.bounds[3]) / 2.0
    return float(geom.area * _M_PER_DEG**2 * np.cos(np.radians(lat)))


def _check_siblings(
    submitted: dict[str, _Entry],
    merged: Mapping[str, _Entry],
    tolerance_m: float,
    errors: list[GridError],
) -> None:
    parents = {e.cell.parent_code for e in submitted.values()}
    entries = [e for e in merged.values() if e.feature is not None or e.cell.parent_code in parents]
    if len(entries) < 2:
        return
    geoms = np.array([e.cell.geometry for e in entries], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    # Only siblings (same parent and level; a misplaced level is its own error) can clash,
    # and only pairs the submission touches are worth re-checking.
    sel = np.array(
        [
            entries[i].cell.parent_code == entries[j].cell.parent_code
            and entries[i].cell.level == entries[j].cell.level
            and (entries[i].feature is not None or entries[j].feature is not None)
            for i, j in zip(left.tolist(), right.tolist(), strict=True)
        ],
        dtype=bool,
    )
    left, right = left[sel], right[sel]
    if not len(left):
        return
    overlap = shapely.intersection(geoms[left], geoms[right])
    has_area = shapely.area(overlap) > 0.0
    left, right, overlap = left[has_area], right[has_area], overlap[has_area]
    # Shrinking by half the tolerance leaves something only where the overlap is thicker
    # than the tolerance: rounding slivers along shared borders vanish, real overlaps stay.
    tol = np.array([_tolerance_deg(g, tolerance_m) / 2.0 for g in overlap])
    core = shapely.buffer(overlap, -tol)
    for i, j, both, thick in zip(left, right, overlap, ~shapely.is_empty(core), strict=True):
        if not thick:
            continue
        a, b = entries[i], entries[j]
        # Blame the submitted side; with two submitted, the later feature.
        if a.feature is None or (b.feature is not None and b.feature > a.feature):
            a, b = b, a
        msg = (
            f"{_who(a)} overlaps its sibling {_who(b)} by more than {tolerance_m:g} m "
            f"(about {_area_m2(both):.0f} m² in common)"
        )
        errors.append(GridError(a.feature, a.cell.code, msg))


def validate_grid(
    features: Sequence[Mapping[str, Any]],
    existing: Mapping[str, CellShape] = _NO_CELLS,
    tolerance_m: float = 1.0,
) -> GridValidation:
    """Check submitted features as an upsert over `existing`; report every problem found.

    Never raises on bad input: each problem becomes a GridError. The result's `cells` are the
    submitted valid cells, districts first, then townships, then villages.
    """
    result = GridValidation(cells=[])
    errors = result.errors
    if isinstance(features, str | bytes) or not isinstance(features, Sequence):
        errors.append(GridError(None, None, "features must be an array of GeoJSON features"))
        return result
    submitted: dict[str, _Entry] = {}
    failed_codes: set[str] = set()
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(features):
        parsed = parse_feature(raw)
        code = parsed.code
        for problem in parsed.problems:
            errors.append(GridError(index, code, problem))
        if code is not None:
            if code in first_seen:
                errors.append(
                    GridError(
                        index,
                        code,
                        (f"duplicate code {code!r}: already used by feature {first_seen[code]}"),
                    )
                )
                continue
            first_seen[code] = index
        if parsed.cell is None:
            if code is not None:
                failed_codes.add(code)
            continue
        submitted[parsed.cell.code] = _Entry(parsed.cell, index)
    merged: dict[str, _Entry] = {c: _Entry(cell, None) for c, cell in existing.items()}
    for code, entry in submitted.items():
        old = existing.get(code)
        if old is not None and (old.level, old.parent_code) != (
            entry.cell.level,
            entry.cell.parent_code,
        ):
            result.warnings.append(
                f"feature {entry.feature}: cell {code} moves from {old.level} under "
                f"{old.parent_code} to {entry.cell.level} under {entry.cell.parent_code}"
            )
        merged[code] = entry
    for code in failed_codes:
        merged.pop(code, None)  # a broken replacement must not be checked as the old cell
    for code, entry in submitted.items():
        parent = entry.cell.parent_code
        if parent is not None and not code.startswith(parent):
            result.warnings.append(
                f"feature {entry.feature}: code {code} does not start with its parent's "
                f"code {parent} (statistical division codes usually do)"
            )
    _check_parents(submitted, merged, failed_codes, errors)
    _check_containment(submitted, merged, tolerance_m, errors)
    _check_siblings(submitted, merged, tolerance_m, errors)
    rank = {level: i for i, level in enumerate(LEVELS)}
    ordered = sorted(submitted.values(), key=lambda e: (rank[e.cell.level], e.feature))
    result.cells = [e.cell for e in ordered]
    return result


def feature_of(cell: CellShape, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A GeoJSON Feature for a cell; `extra` adds (or overrides) properties."""
    props: dict[str, Any] = {
        "code": cell.code,
        "name": cell.name,
        "level": cell.level,
        "parent_code": cell.parent_code,
    }
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": cell.code,
        "properties": props,
        "geometry": mapping(cell.geometry),
    }
