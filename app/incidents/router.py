"""HTTP routes for incidents."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import ClockDep, CurrentPrincipal, SessionDep
from app.incidents import service
from app.incidents.schemas import IncidentDetail

router = APIRouter(tags=["incidents"])


@router.get("/incidents/{incident_id}", operation_id="get_incident", response_model=IncidentDetail)
async def get_incident(
    incident_id: str,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    principal: CurrentPrincipal,
) -> IncidentDetail:
    """One incident with its reports and timeline, within the caller's jurisdiction."""
    detail = await service.get_incident(session, principal, incident_id, clock.now())
    response.headers["ETag"] = f'"{detail.version}"'
    return detail
