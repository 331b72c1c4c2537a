"""Category table: routing rule, time limits and merge rule are data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime


class Category(SQLModel, table=True):
    __tablename__ = "categories"

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    materials: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    lead: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cooperating: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    acknowledge_minutes: int
    arrive_minutes: int
    resolve_minutes: int
    merge_radius_m: float
    merge_window_minutes: int
    updated_at: datetime = Field(sa_type=UtcDateTime)
