"""Report table: the observation as submitted and as located."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime, new_id
from app.spatial.types import GeometryType


class Report(SQLModel, table=True):
    """One observation by one reporter; never changed once stored."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_reporter", "reporter_kind", "reporter_id", "received_at"),
        # The scorecard counts reports observed in a period under a cell.
        Index("ix_reports_district_observed", "district_code", "observed_at"),
        Index("ix_reports_township_observed", "township_code", "observed_at"),
        Index("ix_reports_village_observed", "village_code", "observed_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    district_code: str = Field(max_length=40)
    category: str = Field(max_length=40, foreign_key="categories.code")
    material: str | None = Field(default=None, max_length=40)
    lon: float
    lat: float
    location: Any = Field(sa_column=Column(GeometryType("POINT"), nullable=False))
    submitted_lon: float
    submitted_lat: float
    submitted_crs: str = Field(max_length=8)
    accuracy_m: float | None = None
    observed_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(sa_type=UtcDateTime)
    description: str | None = Field(default=None, max_length=2000)
    reporter_kind: str = Field(max_length=16)
    reporter_id: str = Field(max_length=32)
    reporter_name: str = Field(max_length=200)
    reporter_cell_code: str | None = Field(default=None, max_length=40)
    village_code: str = Field(max_length=40)
    township_code: str = Field(max_length=40)
    incident_id: str = Field(max_length=32, foreign_key="incidents.id", index=True)
    opened_incident: bool = False
    client_report_id: str | None = Field(default=None, max_length=200)
