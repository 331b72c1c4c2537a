"""API shapes for cells, location and grid imports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Level = Literal["district", "township", "village"]


class CellRef(BaseModel):
    code: str
    name: str


class CellSummary(BaseModel):
    code: str
    name: str
    level: Level
    parent_code: str | None


class CellDetail(CellSummary):
    children: list[str]
    area_km2: float


class Located(BaseModel):
    district: CellRef
    township: CellRef
    village: CellRef


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    warnings: list[str]
    dry_run: bool = False
