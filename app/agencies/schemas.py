"""API shapes for agencies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AgencyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": "agriculture", "name": "区农业农村局", "kind": "bureau"}]
        },
    )

    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["bureau"] = Field(
        description="Only bureaus are created here; township agencies come with the grid."
    )


class AgencyOut(BaseModel):
    code: str
    name: str
    kind: Literal["township", "bureau"]
    cell_code: str | None
