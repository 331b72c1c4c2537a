"""Shaping incidents for answers: the list item, its resolution, and `overdue` at read time."""

from __future__ import annotations

from datetime import datetime

from app.grid.schemas import Located
from app.incidents.models import WORKING_STATUSES, Incident
from app.incidents.schemas import AssignmentOut, IncidentOut, PenaltyOut, Point, Resolution


def is_overdue(incident: Incident, now: datetime) -> bool:
    """The next step's time limit has passed (resolved incidents wait on verification)."""
    return incident.status in WORKING_STATUSES and now > incident.due_at


def resolution_of(incident: Incident) -> Resolution | None:
    if incident.outcome is None:
        return None
    penalty = None
    if incident.penalty_kind is not None:
        amount = incident.penalty_amount_yuan
        penalty = PenaltyOut(
            kind=incident.penalty_kind,  # checked when stored
            amount_yuan=None if amount is None else float(amount),
            legal_basis=incident.legal_basis,
        )
    return Resolution(
        outcome=incident.outcome,  # checked when stored
        penalty=penalty,
        legal_basis=incident.legal_basis,
        resolved_at=incident.resolved_at,
    )


def incident_out(
    incident: Incident, located: Located, assignments: list[AssignmentOut], now: datetime
) -> IncidentOut:
    return IncidentOut(
        id=incident.id,
        case_number=incident.case_number,
        category=incident.category,
        status=incident.status,
        version=incident.version,
        location=Point(lon=incident.lon, lat=incident.lat),
        cell=located,
        opened_at=incident.opened_at,
        updated_at=incident.updated_at,
        due_at=incident.due_at,
        overdue=is_overdue(incident, now),
        closed_at=incident.closed_at,
        report_count=incident.report_count,
        assignments=assignments,
        resolution=resolution_of(incident),
    )
