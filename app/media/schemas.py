"""API shapes for photos."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from app.incidents.schemas import Point


class PhotoOut(BaseModel):
    id: str
    sha256: str
    content_type: str
    bytes: int
    url: str
    taken_at: datetime | None
    gps: Point | None
