"""Shaping incidents for answers: the list item, its resolution, and `overdue` at read time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from app.grid.schemas import Located
from app.incidents.models import WORKING_STATUSES
from app.incidents.schemas import (
    AssignmentOut,
    IncidentOut,
    PenaltyOut,
    Point,
    Resolution,
    Supervision,
)


class IncidentColumns(Protocol):
    """What the answers read of an incident: a stored `Incident`, or the row of one about to
    be written (`app.dbtypes.Columns`)."""

    id: str
    case_number: str
    category: str
    status: str
    version: int
    lon: float
    lat: float
    opened_at: datetime
    updated_at: datetime
    due_at: datetime
    closed_at: datetime | None
    report_count: int
    resolved_at: datetime | None
    outcome: str | None
    penalty_kind: str | None
    penalty_amount_yuan: Decimal | None
    legal_basis: str | None
    void_reason: str | None
    supervision_level: str | None
    supervised_at: datetime | None
    supervision_due_at: datetime | None
    revisited_at: datetime | None
    verified_by: str | None


def is_overdue(incident: IncidentColumns, now: datetime) -> bool:
    """The next step's time limit has passed (resolved incidents wait on verification)."""
    return incident.status in WORKING_STATUSES and now > incident.due_at


def with_lateness(assignment: AssignmentOut, status: str, now: datetime) -> AssignmentOut:
    """The agency's own lateness: a step past its limit while the incident is worked
    (`overdue`), or a step taken after it (`late`)."""
    pending = [
        due
        for done, due in (
            (assignment.acknowledged_at, assignment.acknowledge_due_at),
            (assignment.arrived_at, assignment.arrive_due_at),
        )
        if done is None and due is not None
    ]
    overdue = status in WORKING_STATUSES and any(now > due for due in pending)
    late_steps = any(
        done is not None and due is not None and done > due
        for done, due in (
            (assignment.acknowledged_at, assignment.acknowledge_due_at),
            (assignment.arrived_at, assignment.arrive_due_at),
        )
    )
    return assignment.model_copy(update={"overdue": overdue, "late": overdue or late_steps})


def supervision_of(incident: IncidentColumns, now: datetime) -> Supervision | None:
    if incident.supervision_level is None or incident.supervised_at is None:
        return None
    due = incident.supervision_due_at
    return Supervision(
        level=incident.supervision_level,  # checked when stored
        since=incident.supervised_at,
        due_at=due,
        overdue=due is not None and incident.status in WORKING_STATUSES and now > due,
    )


def resolution_of(incident: IncidentColumns) -> Resolution | None:
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
    incident: IncidentColumns, located: Located, assignments: list[AssignmentOut], now: datetime
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
        assignments=[with_lateness(a, incident.status, now) for a in assignments],
        resolution=resolution_of(incident),
        void_reason=incident.void_reason,  # checked when stored
        supervision=supervision_of(incident, now),
        revisited_at=incident.revisited_at,
        verified_by=incident.verified_by,  # checked when stored
    )
