"""API shapes for reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.grid.schemas import Located
from app.incidents.schemas import Actor, IncidentRef, Point, Routed
from app.media.schemas import PhotoOut

MAX_DESCRIPTION = 2000


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class ReportIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "client_report_id": "0f6e2b8c-3f0a-4c55-9a57-6d1b2c3d4e5f",
                    "category": "open_burning",
                    "material": "straw",
                    "location": {"lon": 110.331, "lat": 25.279, "crs": "wgs84", "accuracy_m": 12},
                    "observed_at": "2026-11-20T08:30:00+08:00",
                    "description": "田间焚烧秸秆，烟较大",
                }
            ]
        },
    )

    client_report_id: str | None = Field(default=None, min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=40)
    material: str | None = Field(default=None, min_length=1, max_length=40)
    location: LocationIn
    observed_at: AwareDatetime = Field(description="RFC 3339 with an offset")
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)

    @field_validator("observed_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        if not isinstance(value, str | datetime):
            raise ValueError("observed_at must be an RFC 3339 time with an offset")
        return value


class LocationOut(Point):
    accuracy_m: float | None = None


class SubmittedLocation(Point):
    crs: str


class ReportOut(BaseModel):
    id: str
    client_report_id: str | None
    category: str
    material: str | None
    location: LocationOut
    submitted_location: SubmittedLocation
    observed_at: datetime
    received_at: datetime
    description: str | None
    reporter: Actor
    cell: Located
    incident: IncidentRef
    routed_to: list[Routed]
    photos: list[PhotoOut]
