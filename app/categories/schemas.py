"""API shapes for categories."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead: list[str] = Field(default_factory=list, max_length=20)
    cooperating: list[str] = Field(default_factory=list, max_length=20)


class TimeLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    acknowledge_minutes: int = Field(ge=1, le=60 * 24 * 30)
    arrive_minutes: int = Field(ge=1, le=60 * 24 * 30)
    resolve_minutes: int = Field(ge=1, le=60 * 24 * 90)


class MergeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    radius_m: float = Field(ge=0, le=10_000)
    window_minutes: int = Field(ge=0, le=60 * 24 * 30)


class CategoryIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "露天焚烧",
                    "materials": ["straw", "garbage", "leaves", "other"],
                    "routing": {"lead": ["urban-management"], "cooperating": []},
                    "time_limits": {
                        "acknowledge_minutes": 15,
                        "arrive_minutes": 60,
                        "resolve_minutes": 120,
                    },
                    "merge": {"radius_m": 300, "window_minutes": 360},
                }
            ]
        },
    )

    code: str | None = Field(
        default=None,
        max_length=40,
        description="Read-only, the path's: a category read back may be put as it is; "
        "a different code is refused",
    )
    name: str = Field(min_length=1, max_length=200)
    materials: list[str] = Field(
        default_factory=list, description="Allowed values of a report's `material`; empty: none."
    )
    routing: Routing = Field(default_factory=Routing)
    time_limits: TimeLimits
    merge: MergeRule = Field(default_factory=lambda: MergeRule(radius_m=300, window_minutes=360))


class CategoryOut(CategoryIn):
    code: str
