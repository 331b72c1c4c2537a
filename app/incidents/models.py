"""Incident, assignment, timeline and case-number tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime, new_id
from app.spatial.types import GeometryType

STATUSES = ("dispatched", "acknowledged", "on_site", "resolved", "closed", "rejected")
TERMINAL_STATUSES = ("closed", "rejected")
ROLES = ("responsible", "lead", "cooperating")


class Incident(SQLModel, table=True):
    """The thing that gets handled. Its location is that of its latest report."""

    __tablename__ = "incidents"
    __table_args__ = (
        # The merge query: open incidents of a category seen recently.
        Index("ix_incidents_merge", "category", "status", "last_observed_at"),
        # SQLite's proximity candidates (PostgreSQL uses a GiST index on geography).
        Index("ix_incidents_lon_lat", "lon", "lat"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    case_number: str = Field(max_length=64, unique=True)
    district_code: str = Field(max_length=40, index=True)
    category: str = Field(max_length=40, foreign_key="categories.code")
    status: str = Field(max_length=16)
    version: int = 1
    lon: float
    lat: float
    location: Any = Field(sa_column=Column(GeometryType("POINT"), nullable=False))
    village_code: str = Field(max_length=40, index=True)
    township_code: str = Field(max_length=40, index=True)
    opened_at: datetime = Field(sa_type=UtcDateTime, index=True)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    last_observed_at: datetime = Field(sa_type=UtcDateTime)
    due_at: datetime = Field(sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    report_count: int = 0


class Assignment(SQLModel, table=True):
    """Incident × agency × role."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("incident_id", "agency_code"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(max_length=32, foreign_key="incidents.id")
    district_code: str = Field(max_length=40)
    agency_code: str = Field(max_length=40, foreign_key="agencies.code", index=True)
    role: str = Field(max_length=16)
    assigned_at: datetime = Field(sa_type=UtcDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class IncidentEvent(SQLModel, table=True):
    """One entry of an incident's timeline; append-only."""

    __tablename__ = "incident_events"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(max_length=32, foreign_key="incidents.id", index=True)
    district_code: str = Field(max_length=40)
    at: datetime = Field(sa_type=UtcDateTime)
    actor_id: str | None = Field(default=None, max_length=32)
    actor_name: str | None = Field(default=None, max_length=200)
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CaseCounter(SQLModel, table=True):
    """The last case sequence number handed out per district and year."""

    __tablename__ = "case_counters"

    district_code: str = Field(primary_key=True, max_length=40)
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_seq: int = 0
