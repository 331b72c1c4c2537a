"""HTTP routes for the grid: import, cells, locate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from shapely.geometry import mapping

from app.crsout import answer_crs
from app.deps import AdminDep, ClockDep, GridReaderDep, SessionDep, StoreDep
from app.formats import geojson_response, wants_geojson
from app.grid import service
from app.grid.schemas import CellDetail, CellSummary, ImportResult, Level, Located
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(tags=["grid"])

_EXAMPLE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {
                "code": "450305",
                "name": "七星区",
                "level": "district",
                "parent_code": None,
            },
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[110.2, 25.2], [110.4, 25.2], [110.4, 25.3], [110.2, 25.2]]],
            },
        }
    ],
}


@router.post("/grid/import", operation_id="import_grid", response_model=ImportResult)
async def import_grid(
    session: SessionDep,
    store: StoreDep,
    clock: ClockDep,
    principal: AdminDep,
    collection: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
    dry_run: bool = False,
) -> ImportResult:
    """Validate and upsert a GeoJSON FeatureCollection of cells, all or nothing."""
    return await service.import_grid(session, store, collection, principal, clock.now(), dry_run)


@router.get("/cells", operation_id="list_cells", response_model=Page[CellSummary])
async def list_cells(
    session: SessionDep,
    _: GridReaderDep,
    level: Level | None = None,
    parent: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[CellSummary]:
    """Cells in code order, filtered by level and parent."""
    rows, next_cursor = await service.list_cells(session, level, parent, limit, cursor)
    items = [CellSummary.model_validate(row, from_attributes=True) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/cells/locate", operation_id="locate_point", response_model=Located)
async def locate(
    session: SessionDep,
    store: StoreDep,
    _: GridReaderDep,
    lon: float,
    lat: float,
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84",
) -> Located:
    """The district, township and village covering a point."""
    lon, lat = service.to_wgs84(lon, lat, crs)
    return await service.locate(session, store, lon, lat)


@router.get(
    "/cells/{code}",
    operation_id="get_cell",
    response_model=CellDetail,
    dependencies=[Depends(answer_crs)],
    responses={200: {"content": {"application/geo+json": {}}}},
)
async def get_cell(
    request: Request, session: SessionDep, _: GridReaderDep, code: str
) -> CellDetail | Response:
    """One cell with its children's codes; a GeoJSON Feature with its boundary on request."""
    cell = await service.get_cell(session, code)
    detail = CellDetail(
        code=cell.code,
        name=cell.name,
        level=cell.level,
        parent_code=cell.parent_code,
        children=await service.child_codes(session, code),
        area_km2=round(cell.area_km2, 6),
    )
    if wants_geojson(request):
        feature = {
            "type": "Feature",
            "id": cell.code,
            "geometry": mapping(cell.boundary),
            "properties": detail.model_dump(),
        }
        return geojson_response(feature)
    return detail
