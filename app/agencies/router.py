"""HTTP routes for agencies."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.agencies import service
from app.agencies.schemas import AgencyCreate, AgencyOut
from app.deps import AdminDep, AnyUserDep, ClockDep, SessionDep

router = APIRouter(tags=["agencies"])


@router.get("/agencies", operation_id="list_agencies", response_model=list[AgencyOut])
async def list_agencies(session: SessionDep, _: AnyUserDep) -> list[AgencyOut]:
    """Every agency: township governments and district bureaus."""
    rows = await service.list_agencies(session)
    return [AgencyOut.model_validate(row, from_attributes=True) for row in rows]


@router.post("/agencies", operation_id="create_agency", status_code=201, response_model=AgencyOut)
async def create_agency(
    data: AgencyCreate, response: Response, session: SessionDep, clock: ClockDep, actor: AdminDep
) -> AgencyOut:
    """Create a district bureau."""
    agency = await service.create_bureau(session, data, actor, clock.now())
    response.headers["Location"] = f"/api/v1/agencies/{agency.code}"
    return AgencyOut.model_validate(agency, from_attributes=True)
