"""HTTP routes for agencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.agencies import service
from app.agencies.schemas import AgencyCreate, AgencyOut
from app.deps import AdminDep, AnyUserDep, ClockDep, SessionDep
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(tags=["agencies"])


@router.get("/agencies", operation_id="list_agencies", response_model=Page[AgencyOut])
async def list_agencies(
    session: SessionDep,
    _: AnyUserDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[AgencyOut]:
    """Agencies, bureaus then township governments, in code order, paged."""
    rows, next_cursor = await service.list_agencies(session, limit, cursor)
    items = [AgencyOut.model_validate(row, from_attributes=True) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.post("/agencies", operation_id="create_agency", status_code=201, response_model=AgencyOut)
async def create_agency(
    data: AgencyCreate, response: Response, session: SessionDep, clock: ClockDep, actor: AdminDep
) -> AgencyOut:
    """Create a district bureau."""
    agency = await service.create_bureau(session, data, actor, clock.now())
    response.headers["Location"] = f"/api/v1/agencies/{agency.code}"
    return AgencyOut.model_validate(agency, from_attributes=True)
