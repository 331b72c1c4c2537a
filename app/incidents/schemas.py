"""API shapes for incidents, their assignments and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.grid.schemas import Located


class Point(BaseModel):
    lon: float
    lat: float


class Actor(BaseModel):
    id: str | None
    name: str | None


class AgencyRef(BaseModel):
    code: str
    name: str


class Routed(BaseModel):
    agency: AgencyRef
    role: str


class AssignmentOut(Routed):
    acknowledged_at: datetime | None


class IncidentRef(BaseModel):
    id: str
    case_number: str
    status: str
    is_new: bool


class IncidentOut(BaseModel):
    id: str
    case_number: str
    category: str
    status: str
    version: int
    location: Point
    cell: Located
    opened_at: datetime
    updated_at: datetime
    due_at: datetime
    overdue: bool
    closed_at: datetime | None
    report_count: int
    assignments: list[AssignmentOut]
    resolution: dict[str, Any] | None = None


class TimelineEntry(BaseModel):
    at: datetime
    actor: Actor
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None


class IncidentReport(BaseModel):
    id: str
    material: str | None
    location: Point
    observed_at: datetime
    received_at: datetime
    reporter: Actor
    description: str | None


class IncidentDetail(IncidentOut):
    reports: list[IncidentReport]
    timeline: list[TimelineEntry]
