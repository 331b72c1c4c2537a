"""Agency table."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime

AGENCY_KINDS = ("township", "bureau")


class Agency(SQLModel, table=True):
    """A township government (one per township cell, same code) or a district bureau."""

    __tablename__ = "agencies"

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    cell_code: str | None = Field(default=None, max_length=40, foreign_key="cells.code")
    created_at: datetime = Field(sa_type=UtcDateTime)
