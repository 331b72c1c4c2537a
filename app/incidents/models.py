"""Incident, assignment, timeline and case-number tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime, new_id
from app.spatial.types import GeometryType

STATUSES = ("dispatched", "acknowledged", "on_site", "resolved", "returned", "closed", "rejected")
TERMINAL_STATUSES = ("closed", "rejected")
# Returned by an agency: waits for a supervisor to void or reassign it (no time limit runs,
# and a new report nearby opens a new incident rather than joining it).
AWAITING_SUPERVISOR = ("returned",)
# States in which the next step has a time limit: what `overdue` is about.
WORKING_STATUSES = ("dispatched", "acknowledged", "on_site")
OUTCOMES = ("extinguished", "stopped", "no_fire_found", "penalized")
PENALTY_KINDS = ("warning", "fine")
# Why a supervisor voided a case (status `rejected`); null for a void without a reason.
VOID_REASONS = ("false_report", "duplicate", "not_ours")
# 督办: 提醒 a reminder, 督办 supervised, 挂牌督办 listed (publicly, the strongest).
SUPERVISION_LEVELS = ("reminder", "supervised", "listed")
ROLES = ("responsible", "lead", "cooperating")


class Incident(SQLModel, table=True):
    """The thing that gets handled. Its location is that of its latest report."""

    __tablename__ = "incidents"
    __table_args__ = (
        # Made by hand per database in the migrations, so not declared here: the merge's
        # partial indexes of the open incidents by place (0007), SQLite's index for a
        # district's scorecard counts per township (0008, app/stats/sql.py), and SQLite's
        # proximity candidates, ix_incidents_lon_lat (PostgreSQL has GiST indexes, 0012).
        #
        # Lists by cell, newest first, paged on (opened_at, id): one index per cell level.
        Index("ix_incidents_district_opened", "district_code", "opened_at", "id"),
        Index("ix_incidents_township_opened", "township_code", "opened_at", "id"),
        Index("ix_incidents_village_opened", "village_code", "opened_at", "id"),
        # ?overdue=true: working states whose due time has passed.
        Index("ix_incidents_status_due", "status", "due_at"),
        # A district's scorecard (app/stats) reads its period (a year: half the table at the
        # bench's scale) from this index alone, every column its counts and durations need:
        # under half the heap's bytes. PostgreSQL reads an index alone only where the
        # visibility map says so, i.e. once (auto)vacuum has been over the table.
        Index(
            "ix_incidents_district_scorecard",
            "district_code",
            "opened_at",
            "township_code",
            "category",
            "status",
            "acknowledged_at",
            "resolved_at",
            "resolve_due_at",
            "rework_count",
            "penalty_kind",
            "penalty_amount_yuan",
        ),
        # The scorecard's overdue count by cell, read from this index alone. Partial: only the
        # incidents still being worked; a query must spell the states as constants to use it.
        Index(
            "ix_incidents_working_due",
            "district_code",
            "township_code",
            "village_code",
            "due_at",
            "opened_at",
            postgresql_where=text("status IN ('dispatched', 'acknowledged', 'on_site')"),
            sqlite_where=text("status IN ('dispatched', 'acknowledged', 'on_site')"),
        ),
        # The scorecard's cases verified by their own village's grid worker, from this partial
        # index alone (the independent verifications are the rest of the closed cases).
        Index(
            "ix_incidents_worker_verified",
            "district_code",
            "opened_at",
            "township_code",
            "village_code",
            "status",
            postgresql_where=text("verified_by = 'village_worker'"),
            sqlite_where=text("verified_by = 'village_worker'"),
        ),
        # The scorecard's supervised cases (督办), few: read from this partial index alone.
        Index(
            "ix_incidents_supervised",
            "district_code",
            "opened_at",
            "township_code",
            "village_code",
            "status",
            "resolved_at",
            "supervision_due_at",
            "resolve_due_at",
            postgresql_where=text("supervision_level IS NOT NULL"),
            sqlite_where=text("supervision_level IS NOT NULL"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    case_number: str = Field(max_length=64, unique=True)
    district_code: str = Field(max_length=40)
    category: str = Field(max_length=40, foreign_key="categories.code")
    status: str = Field(max_length=16)
    version: int = 1
    lon: float
    lat: float
    location: Any = Field(sa_column=Column(GeometryType("POINT"), nullable=False))
    village_code: str = Field(max_length=40)
    township_code: str = Field(max_length=40)
    opened_at: datetime = Field(sa_type=UtcDateTime, index=True)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    last_observed_at: datetime = Field(sa_type=UtcDateTime)
    # The time limit of the next step; resolve_due_at the limit of the whole case, fixed when
    # it opens or is reassigned (what the scorecard's on-time rate measures against).
    due_at: datetime = Field(sa_type=UtcDateTime)
    resolve_due_at: datetime = Field(sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    report_count: int = 0
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    arrived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # the latest resolve
    verified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    rework_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    outcome: str | None = Field(default=None, max_length=16)
    penalty_kind: str | None = Field(default=None, max_length=16)
    penalty_amount_yuan: Decimal | None = Field(
        default=None, sa_column=Column(Numeric(12, 2), nullable=True)
    )
    legal_basis: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    void_reason: str | None = Field(default=None, max_length=16)
    # 督办: the latest level a supervisor set, when first supervised, and the supervisor's own
    # deadline (null: the case's own resolve limit).
    supervision_level: str | None = Field(default=None, max_length=16)
    supervised_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    supervision_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revisited_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # 回头看, latest
    # Who verified it last: a supervisor (independent of the assessed unit) or a grid worker
    # of the incident's own village; null before verifiers were recorded.
    verified_by: str | None = Field(default=None, max_length=16)


class Assignment(SQLModel, table=True):
    """Incident × agency × role."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("incident_id", "agency_code"),
        # An agency's inbox and the `agency=` filter: EXISTS on (agency, incident).
        Index("ix_assignments_agency_incident", "agency_code", "incident_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(max_length=32, foreign_key="incidents.id")
    district_code: str = Field(max_length=40)
    agency_code: str = Field(max_length=40, foreign_key="agencies.code")
    role: str = Field(max_length=16)
    assigned_at: datetime = Field(sa_type=UtcDateTime)
    # Each agency's own steps and their limits (counted from the opening or the latest
    # reassignment); null limits on assignments made before they were recorded.
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    arrived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acknowledge_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    arrive_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


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


class OverdueNotice(SQLModel, table=True):
    """One `incident.overdue` event sent for a stage of an incident past its limit: the unique
    key is the claim that lets only one of several workers send it."""

    __tablename__ = "incident_overdue_notices"
    __table_args__ = (UniqueConstraint("incident_id", "stage", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(max_length=32, foreign_key="incidents.id")
    stage: str = Field(max_length=16)  # acknowledge, arrive, resolve, supervision
    due_at: datetime = Field(sa_type=UtcDateTime)
    noticed_at: datetime = Field(sa_type=UtcDateTime)


class CaseCounter(SQLModel, table=True):
    """The last case sequence number handed out per district and year."""

    __tablename__ = "case_counters"

    district_code: str = Field(primary_key=True, max_length=40)
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_seq: int = 0
