"""API shapes for incidents, their assignments and timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.grid.schemas import Located

Outcome = Literal["extinguished", "stopped", "no_fire_found", "penalized"]
PenaltyKind = Literal["warning", "fine"]
VoidReason = Literal["false_report", "duplicate", "not_ours"]
SupervisionLevel = Literal["reminder", "supervised", "listed"]
Note = Annotated[str | None, Field(default=None, max_length=2000, description="Free text")]


class Point(BaseModel):
    lon: float
    lat: float


class Actor(BaseModel):
    id: str | None
    name: str | None


class AgencyRef(BaseModel):
    code: str
    name: str


class Routed(BaseModel):
    agency: AgencyRef
    role: str


class AssignmentOut(Routed):
    """The agency's own part: its steps, their limits, and whether it is late."""

    acknowledged_at: datetime | None
    arrived_at: datetime | None = None
    acknowledge_due_at: datetime | None = None
    arrive_due_at: datetime | None = None
    overdue: bool = Field(
        default=False,
        description="The incident is being worked and this agency's next step is past its limit",
    )
    late: bool = Field(
        default=False,
        description="This agency acknowledged or arrived after its limit, or is overdue now",
    )


class IncidentRef(BaseModel):
    id: str
    case_number: str
    status: str
    is_new: bool


class PenaltyOut(BaseModel):
    kind: PenaltyKind
    amount_yuan: float | None
    legal_basis: str | None


class Resolution(BaseModel):
    """The enforcement record of the latest resolve."""

    outcome: Outcome
    penalty: PenaltyOut | None
    legal_basis: str | None
    resolved_at: datetime | None


class Supervision(BaseModel):
    """督办: the latest level a supervisor set, since when, and the supervisor's deadline."""

    level: SupervisionLevel
    since: datetime
    due_at: datetime | None
    overdue: bool = Field(description="Still being worked past the supervisor's deadline")


class IncidentOut(BaseModel):
    id: str
    case_number: str
    category: str
    status: str
    version: int
    location: Point
    cell: Located
    opened_at: datetime
    updated_at: datetime
    due_at: datetime
    overdue: bool
    closed_at: datetime | None
    report_count: int
    assignments: list[AssignmentOut]
    resolution: Resolution | None = None
    void_reason: VoidReason | None = Field(
        default=None, description="Why a supervisor voided it (status rejected), if said"
    )
    supervision: Supervision | None = None
    revisited_at: datetime | None = Field(
        default=None, description="When a supervisor last looked back at it (回头看)"
    )
    verified_by: Literal["supervisor", "village_worker"] | None = Field(
        default=None,
        description="Who verified it last: a supervisor (independent) or a grid worker of its "
        "own village",
    )


class TimelineEntry(BaseModel):
    at: datetime
    actor: Actor
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None


class IncidentReport(BaseModel):
    id: str
    material: str | None
    location: Point
    observed_at: datetime
    received_at: datetime
    reporter: Actor
    description: str | None


class IncidentDetail(IncidentOut):
    reports: list[IncidentReport]
    timeline: list[TimelineEntry]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note


class AcknowledgeIn(_Action):
    """dispatched → acknowledged, by an officer of an assigned agency."""

    action: Literal["acknowledge"]


class ArriveIn(_Action):
    """acknowledged → on_site, by an officer of an assigned agency."""

    action: Literal["arrive"]


class PenaltyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PenaltyKind
    amount_yuan: Decimal | None = Field(
        default=None, ge=0, max_digits=12, decimal_places=2, description="Required for a fine"
    )
    legal_basis: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _fine_has_amount(self) -> PenaltyIn:
        if self.kind == "fine" and (self.amount_yuan is None or self.amount_yuan <= 0):
            raise ValueError("a fine needs amount_yuan greater than 0")
        if self.kind == "warning" and self.amount_yuan:
            raise ValueError("a warning has no amount_yuan")
        return self


class ResolveIn(_Action):
    """on_site → resolved, with the enforcement record; `penalty` iff outcome is penalized."""

    action: Literal["resolve"]
    outcome: Outcome
    penalty: PenaltyIn | None = None

    @model_validator(mode="after")
    def _penalty_iff_penalized(self) -> ResolveIn:
        if self.outcome == "penalized" and self.penalty is None:
            raise ValueError("outcome penalized needs a penalty")
        if self.outcome != "penalized" and self.penalty is not None:
            raise ValueError("a penalty is recorded only with outcome penalized")
        return self


class VerifyIn(_Action):
    """resolved → closed (passed) or back to on_site (failed: rework)."""

    action: Literal["verify"]
    passed: bool


class ReturnIn(_Action):
    """Any open state → returned: an officer sends a misrouted or false case back to the
    supervisors (it still counts); needs a note."""

    action: Literal["return"]
    note: str = Field(min_length=1, max_length=2000)


class VoidIn(_Action):
    """Any open or returned state → rejected, by a supervisor only; needs a note."""

    action: Literal["void"]
    note: str = Field(min_length=1, max_length=2000)
    reason: VoidReason | None = None


class RejectIn(_Action):
    """The former name of `void`, kept for existing clients: a supervisor's only."""

    action: Literal["reject"]
    note: str = Field(min_length=1, max_length=2000)


class SuperviseIn(_Action):
    """督办, by a supervisor, on an open or returned incident: the status does not change."""

    action: Literal["supervise"]
    level: SupervisionLevel = Field(
        description="reminder (提醒), supervised (督办) or listed (挂牌督办)"
    )
    due_at: AwareDatetime | None = Field(
        default=None, description="The supervisor's own deadline, in the future (with offset)"
    )


class RevisitIn(_Action):
    """回头看, by a supervisor, within 30 days of closing: passed (stays closed) or reopened
    (back to dispatched: rework, time limits start again)."""

    action: Literal["revisit"]
    passed: bool


class ReassignIn(_Action):
    """Any open state → dispatched, to another village and/or category."""

    action: Literal["reassign"]
    cell_code: str | None = Field(default=None, max_length=40, description="A village code")
    category: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _something_to_change(self) -> ReassignIn:
        if self.cell_code is None and self.category is None:
            raise ValueError("reassign needs cell_code and/or category")
        return self


ActionIn = Annotated[
    AcknowledgeIn
    | ArriveIn
    | ResolveIn
    | VerifyIn
    | ReturnIn
    | VoidIn
    | RejectIn
    | SuperviseIn
    | RevisitIn
    | ReassignIn,
    Field(discriminator="action"),
]
