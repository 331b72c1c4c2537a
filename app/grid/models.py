"""Grid cell table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime
from app.spatial.types import GeometryType

LEVELS = ("district", "township", "village")


class Cell(SQLModel, table=True):
    """One grid unit. Codes follow the statistical division code layout but are not assumed."""

    __tablename__ = "cells"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=200)
    level: str = Field(max_length=16, index=True)
    parent_code: str | None = Field(
        default=None, max_length=40, foreign_key="cells.code", index=True
    )
    district_code: str = Field(max_length=40, index=True)
    boundary: Any = Field(sa_column=Column(GeometryType(), nullable=False))
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    area_km2: float
    updated_at: datetime = Field(sa_type=UtcDateTime)


CELLS: Table = Cell.__table__  # type: ignore[attr-defined]
