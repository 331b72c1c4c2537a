"""Photo table: a record per report and content hash; the bytes live under the media dir."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime, new_id


class Photo(SQLModel, table=True):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("report_id", "sha256"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    report_id: str = Field(max_length=32, foreign_key="reports.id", index=True)
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=32)
    size_bytes: int
    taken_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    gps_lon: float | None = None
    gps_lat: float | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
