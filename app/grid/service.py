"""Grid rules: importing a district's cells, listing them, and locating points."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, update
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.audit import service as audit
from app.auth.principal import Principal
from app.grid.models import CELLS, Cell
from app.grid.schemas import CellRef, ImportResult, Located
from app.pagination import decode_cursor, encode_cursor
from app.spatial.store import CellBounds, Chain, SpatialStore
from geo import crs as geo_crs
from geo.area import area_km2
from geo.grid import CellShape, validate_grid

Progress = Callable[[str], None]
_CHUNK = 500


def _no_progress(_: str) -> None:
    pass


async def import_grid(
    session: AsyncSession,
    store: SpatialStore,
    collection: Any,
    actor: Principal | None,
    now: datetime,
    dry_run: bool = False,
    progress: Progress = _no_progress,
) -> ImportResult:
    """Validate and upsert a FeatureCollection of cells, all or nothing."""
    features = _features_of(collection)
    progress(f"read {len(features)} features")
    existing = await _existing_cells(session, features)
    validation = validate_grid(features, {code: _shape(row) for code, row in existing.items()})
    progress(f"validated {len(features)} features")
    if not validation.ok:
        problems = [{"feature": e.feature, "code": e.code, "msg": e.msg} for e in validation.errors]
        raise errors.GridInvalid(
            f"{len(problems)} problem(s) in the grid; nothing imported", problems
        )

    created, changed, unchanged = _plan(validation.cells, existing)
    result = ImportResult(
        created=len(created),
        updated=len(changed),
        unchanged=unchanged,
        warnings=validation.warnings,
        dry_run=dry_run,
    )
    if dry_run:
        return result
    district_of = _district_codes(validation.cells, existing)
    written = await _insert_cells(session, created, district_of, now)
    written += await _update_cells(session, changed, existing, district_of, now)
    progress(f"wrote {len(written)} cells")
    await store.index_cells(session, written)
    await _ensure_township_agencies(
        session, [c for c in validation.cells if c.level == "township"], now
    )
    audit.record(
        session,
        actor,
        "grid.imported",
        "grid",
        ",".join(sorted(set(district_of.values())))[:64],
        now,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )
    return result


def _features_of(collection: Any) -> list[Any]:
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise errors.GridInvalid(
            "the body must be a GeoJSON FeatureCollection",
            [{"feature": None, "code": None, "msg": "not a GeoJSON FeatureCollection"}],
        )
    features = collection.get("features")
    if not isinstance(features, list) or not features:
        raise errors.GridInvalid(
            "the FeatureCollection has no features",
            [{"feature": None, "code": None, "msg": "features must be a non-empty array"}],
        )
    return features


def _strings(features: Sequence[Any], key: str) -> set[str]:
    found = set()
    for feature in features:
        props = feature.get("properties") if isinstance(feature, Mapping) else None
        value = props.get(key) if isinstance(props, Mapping) else None
        if isinstance(value, str):
            found.add(value)
    return found


async def _existing_cells(session: AsyncSession, features: Sequence[Any]) -> dict[str, Cell]:
    """The stored cells an import can touch: itself, its parents, their other children."""
    related = sorted(_strings(features, "code") | _strings(features, "parent_code"))
    found: dict[str, Cell] = {}
    for start in range(0, len(related), _CHUNK):
        chunk = related[start : start + _CHUNK]
        rows = await session.exec(
            select(Cell).where(or_(col(Cell.code).in_(chunk), col(Cell.parent_code).in_(chunk)))
        )
        found.update((row.code, row) for row in rows)
    return found


def _shape(cell: Cell) -> CellShape:
    return CellShape(cell.code, cell.name, cell.level, cell.parent_code, cell.boundary)


def _plan(
    cells: Sequence[CellShape], existing: Mapping[str, Cell]
) -> tuple[list[CellShape], list[CellShape], int]:
    created, changed, unchanged = [], [], 0
    for cell in cells:
        old = existing.get(cell.code)
        if old is None:
            created.append(cell)
        elif (old.name, old.level, old.parent_code) != (
            cell.name,
            cell.level,
            cell.parent_code,
        ) or (not old.boundary.equals_exact(cell.geometry, 0.0)):
            changed.append(cell)
        else:
            unchanged += 1
    return created, changed, unchanged


def _district_codes(cells: Sequence[CellShape], existing: Mapping[str, Cell]) -> dict[str, str]:
    """Each submitted cell's district; cells come parents first."""
    district_of: dict[str, str] = {}
    for cell in cells:
        if cell.parent_code is None:
            district_of[cell.code] = cell.code
        elif cell.parent_code in district_of:
            district_of[cell.code] = district_of[cell.parent_code]
        else:
            district_of[cell.code] = existing[cell.parent_code].district_code
    return district_of


def _row(cell: CellShape, district_code: str, now: datetime) -> dict[str, Any]:
    min_lon, min_lat, max_lon, max_lat = cell.geometry.bounds
    return {
        "code": cell.code,
        "name": cell.name,
        "level": cell.level,
        "parent_code": cell.parent_code,
        "district_code": district_code,
        "boundary": cell.geometry,
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
        "area_km2": area_km2(cell.geometry),
        "updated_at": now,
    }


def _bounds(cell_id: int, row: Mapping[str, Any]) -> CellBounds:
    return CellBounds(cell_id, row["min_lon"], row["min_lat"], row["max_lon"], row["max_lat"])


async def _insert_cells(
    session: AsyncSession, cells: Sequence[CellShape], district_of: Mapping[str, str], now: datetime
) -> list[CellBounds]:
    if not cells:
        return []
    table = CELLS
    rows = [_row(cell, district_of[cell.code], now) for cell in cells]
    conn = await session.connection()
    written: list[CellBounds] = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        result = await conn.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), chunk
        )
        written += [_bounds(cell_id, row) for (cell_id,), row in zip(result, chunk, strict=True)]
    return written


async def _update_cells(
    session: AsyncSession,
    cells: Sequence[CellShape],
    existing: Mapping[str, Cell],
    district_of: Mapping[str, str],
    now: datetime,
) -> list[CellBounds]:
    if not cells:
        return []
    table = CELLS
    rows = []
    for cell in cells:
        row = _row(cell, district_of[cell.code], now)
        row["_id"] = existing[cell.code].id
        rows.append(row)
    values: dict[str, Any] = {key: bindparam(key) for key in rows[0] if key not in ("_id", "code")}
    statement = update(table).where(table.c.id == bindparam("_id")).values(values)
    conn = await session.connection()
    for start in range(0, len(rows), _CHUNK):
        await conn.execute(statement, rows[start : start + _CHUNK])
    return [_bounds(row["_id"], row) for row in rows]


async def _ensure_township_agencies(
    session: AsyncSession, townships: Iterable[CellShape], now: datetime
) -> None:
    """Every township has its agency, with the township's code and name."""
    for township in townships:
        agency = await session.get(Agency, township.code)
        if agency is None:
            session.add(
                Agency(
                    code=township.code,
                    name=township.name,
                    kind="township",
                    cell_code=township.code,
                    created_at=now,
                )
            )
        elif agency.kind == "township" and agency.name != township.name:
            agency.name = township.name
            session.add(agency)
    await session.flush()


async def get_cell(session: AsyncSession, code: str) -> Cell:
    cell = (await session.exec(select(Cell).where(Cell.code == code))).first()
    if cell is None:
        raise errors.NotFound(f"no cell {code!r}")
    return cell


async def child_codes(session: AsyncSession, code: str) -> list[str]:
    rows = await session.exec(
        select(Cell.code).where(Cell.parent_code == code).order_by(col(Cell.code))
    )
    return list(rows)


async def list_cells(
    session: AsyncSession,
    level: str | None,
    parent: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Cell], str | None]:
    """Cells in code order, one page at a time."""
    query = select(Cell).order_by(col(Cell.code)).limit(limit + 1)
    if level is not None:
        query = query.where(Cell.level == level)
    if parent is not None:
        query = query.where(Cell.parent_code == parent)
    if cursor is not None:
        (after,) = decode_cursor(cursor, 1)
        query = query.where(col(Cell.code) > str(after))
    rows = list(await session.exec(query))
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].code)
    return rows, None


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Check a submitted coordinate pair and convert it to WGS-84."""
    problems = []
    if not math.isfinite(lon) or not -180 <= lon <= 180:
        problems.append({"loc": ["lon"], "msg": "lon must be a finite number within ±180"})
    if not math.isfinite(lat) or not -90 <= lat <= 90:
        problems.append({"loc": ["lat"], "msg": "lat must be a finite number within ±90"})
    if crs not in geo_crs.SUPPORTED_CRS:
        problems.append({"loc": ["crs"], "msg": f"crs must be one of {geo_crs.SUPPORTED_CRS}"})
    if problems:
        raise errors.ValidationFailed(str(problems[0]["msg"]), errors=problems)
    return geo_crs.to_wgs84(lon, lat, crs)


async def locate(session: AsyncSession, store: SpatialStore, lon: float, lat: float) -> Located:
    """The village, township and district covering a WGS-84 point."""
    found = await store.locate(session, lon, lat)
    if found is None:
        raise errors.OutsideGrid(f"({lon:.6f}, {lat:.6f}) is in no village of the grid")
    return located(found)


def located(chain: Chain) -> Located:
    return Located(
        village=CellRef(code=chain.village_code, name=chain.village_name),
        township=CellRef(code=chain.township_code, name=chain.township_name),
        district=CellRef(code=chain.district_code, name=chain.district_name),
    )


def _chain_query() -> Any:
    village, township, district = CELLS.alias("v"), CELLS.alias("t"), CELLS.alias("d")
    return (
        sql_select(village.c.code, village.c.name, township.c.code, township.c.name)
        .add_columns(district.c.code, district.c.name)
        .select_from(
            village.join(township, township.c.code == village.c.parent_code).join(
                district, district.c.code == township.c.parent_code
            )
        )
        .where(village.c.code == bindparam("village_code"))
    )


# Built once: this runs for every report and every locate.
_CHAIN = _chain_query()


async def chain(session: AsyncSession, village_code: str) -> Located:
    """A village with its township and district."""
    conn = await session.connection()
    row = (await conn.execute(_CHAIN, {"village_code": village_code})).one()
    return Located(
        village=CellRef(code=row[0], name=row[1]),
        township=CellRef(code=row[2], name=row[3]),
        district=CellRef(code=row[4], name=row[5]),
    )
