"""API shapes of the scorecard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from app.grid.schemas import Level
from app.stats.sql import Interval

Yuan = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


@dataclass(frozen=True)
class Period:
    """What the scorecard is asked for: [start, end), and buckets for a series if any."""

    start: datetime
    end: datetime
    interval: Interval | None = None


class StatsCell(BaseModel):
    code: str
    name: str
    level: Level


class Durations(BaseModel):
    """Seconds; null when no incident of the period has the time measured."""

    median: float | None
    p90: float | None


class Penalties(BaseModel):
    warning: int = Field(description="incidents resolved with a warning")
    fine: int = Field(description="incidents resolved with a fine")
    fine_yuan: Yuan = Field(description="sum of the fines, yuan")


class ChildStats(BaseModel):
    code: str
    name: str
    incidents: int
    on_time_rate: float | None
    overdue_open: int


class SeriesPoint(BaseModel):
    start: datetime = Field(description="start of the bucket (a UTC+8 day, week or month), UTC")
    reports: int
    incidents: int


class Scorecard(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    cell: StatsCell
    from_: datetime = Field(alias="from")
    to: datetime
    reports: int
    incidents: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    acknowledge_seconds: Durations
    resolve_seconds: Durations
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    overdue_open: int
    penalties: Penalties
    voided: int = Field(
        description="cases a supervisor voided (status rejected): left out of the closure rate"
    )
    returned: int = Field(
        description="cases an agency sent back, waiting for a supervisor: counted in every rate"
    )
    closed_verified_by_village_worker: int = Field(
        description="closed cases whose closing verification was by a grid worker of their own "
        "village; the other closed cases were verified independently, by a supervisor (or "
        "before verifiers were recorded)"
    )
    supervised: int = Field(description="cases a supervisor supervised (督办, any level)")
    supervised_on_time_rate: float | None = Field(
        description="supervised cases closed by their deadline / supervised cases closed"
    )
    rate_definitions: dict[str, str] = Field(
        description="each rate's numerator and denominator, and which cases it leaves out"
    )
    children: list[ChildStats]
    series: list[SeriesPoint] | None = Field(
        default=None, description="only when `interval` is asked for"
    )

    @model_serializer(mode="wrap")
    def _without_absent_series(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.series is None and isinstance(data, dict):
            data.pop("series", None)
        return data


class AgencyRef(BaseModel):
    code: str
    name: str
    kind: str


class OwnSteps(BaseModel):
    """The agency's own part of its incidents (app/stats/agencies.py)."""

    acknowledged: int
    acknowledged_on_time: int
    own_acknowledge_on_time_rate: float | None
    arrived: int
    arrived_on_time: int
    own_arrive_on_time_rate: float | None
    overdue_now: int = Field(description="incidents being worked with this agency's step late")


class AgencyScorecard(BaseModel):
    """The cell scorecard's indicators over the incidents assigned to an agency, and its own
    steps' timeliness."""

    model_config = ConfigDict(populate_by_name=True)

    agency: AgencyRef
    from_: datetime = Field(alias="from")
    to: datetime
    reports: int
    incidents: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    acknowledge_seconds: Durations
    resolve_seconds: Durations
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    overdue_open: int
    penalties: Penalties
    voided: int
    returned: int
    supervised: int
    supervised_on_time_rate: float | None
    own: OwnSteps
    rate_definitions: dict[str, str]
