"""Incident actions: the case cycle's transitions, who may make them, and their time limits.

An action reads the incident, checks the caller and the state, then writes with a
compare-and-set on `version` (UPDATE … WHERE id = :id AND version = :v). When another writer
got there first the update touches no row: the action is judged again on what is now stored,
so two officers acting at once cannot both win, and an `If-Match` that no longer matches is a
precondition failure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Principal
from app.categories.models import Category
from app.grid import service as grid_service
from app.incidents import access
from app.incidents import service as incident_service
from app.incidents.access import ASSIGNMENTS, INCIDENTS
from app.incidents.models import AWAITING_SUPERVISOR, WORKING_STATUSES, Incident, IncidentEvent
from app.incidents.output import incident_out
from app.incidents.schemas import (
    AcknowledgeIn,
    ActionIn,
    ArriveIn,
    AssignmentOut,
    IncidentOut,
    ReassignIn,
    RejectIn,
    ResolveIn,
    ReturnIn,
    RevisitIn,
    SuperviseIn,
    VerifyIn,
    VoidIn,
)
from app.outbox import service as outbox

OPEN_STATUSES = ("dispatched", "acknowledged", "on_site", "resolved")
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    # Each agency acknowledges and arrives for itself while the incident is worked; the
    # incident's status follows the agency that drives it (see `drives`).
    "acknowledge": WORKING_STATUSES,
    "arrive": WORKING_STATUSES,
    "resolve": ("on_site",),
    "verify": ("resolved",),
    # The assessed unit sends a case back; only a supervisor voids it or routes it again.
    "return": OPEN_STATUSES,
    "void": OPEN_STATUSES + AWAITING_SUPERVISOR,
    "reject": OPEN_STATUSES + AWAITING_SUPERVISOR,  # the former name of void
    "reassign": OPEN_STATUSES + AWAITING_SUPERVISOR,
    "supervise": OPEN_STATUSES + AWAITING_SUPERVISOR,
    "revisit": ("closed",),
}
# 回头看: how long after closing a supervisor may look back at a case.
REVISIT_WINDOW = timedelta(days=30)
# Compare-and-set attempts before giving up on an incident that keeps changing under us.
MAX_ATTEMPTS = 3
_EVENTS = IncidentEvent.__table__  # type: ignore[attr-defined]


@dataclass
class Change:
    """What an action writes: the new status and column values, and what follows the write."""

    to_status: str
    values: dict[str, Any]
    category: Category | None = None  # reassign: route again under this category
    extra: dict[str, Any] = field(default_factory=dict)


async def act(
    session: AsyncSession,
    principal: Principal,
    incident_id: str,
    data: ActionIn,
    if_match: Collection[int] | None,
    now: datetime,
) -> IncidentOut:
    """Apply one action; 404 unseen, 403 not the caller's to do, 412 stale, 409 wrong state."""
    for _ in range(MAX_ATTEMPTS):
        incident = await _read(session, incident_id)
        assignments = (
            [] if incident is None else await incident_service.assignments_of(session, incident_id)
        )
        agencies = {a.agency.code for a in assignments}
        if incident is None or not await access.may_see_incident(
            session, principal, incident, agencies
        ):
            raise errors.NotFound(f"no incident {incident_id!r}")
        _authorise(principal, incident, assignments, data)
        if if_match is not None and incident.version not in if_match:
            raise errors.PreconditionFailed(
                f"the incident is at version {incident.version}, not the one in If-Match"
            )
        if incident.status not in ALLOWED_FROM[data.action]:
            raise errors.InvalidTransition(
                f"cannot {data.action} an incident that is {incident.status}"
            )
        from_status = incident.status
        change = await _plan(session, principal, incident, assignments, data, now)
        if await _compare_and_set(session, incident, change, now):
            break
    else:
        raise errors.Conflict("the incident kept changing; read it again and retry")
    return await _after_write(session, principal, incident_id, data, from_status, change, now)


async def _read(session: AsyncSession, incident_id: str) -> Incident | None:
    query = (
        sm_select(Incident)
        .where(Incident.id == incident_id)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


def _authorise(
    principal: Principal, incident: Incident, assignments: list[AssignmentOut], data: ActionIn
) -> None:
    roles = {a.agency.code: a.role for a in assignments}
    officer_role = roles.get(principal.agency_code or "") if principal.has_role("officer") else None
    supervisor = principal.has_role("supervisor") and access.in_cell(principal.cell_code, incident)
    if isinstance(data, AcknowledgeIn | ArriveIn | ResolveIn):
        allowed = officer_role is not None
    elif isinstance(data, VerifyIn):
        village_worker = (
            principal.has_role("grid_worker") and principal.cell_code == incident.village_code
        )
        allowed = supervisor or village_worker
    elif isinstance(data, ReturnIn):
        allowed = officer_role is not None
    else:  # void, reject (its former name), supervise, revisit, reassign
        allowed = supervisor
    if not allowed:
        raise errors.Forbidden(f"your role may not {data.action} this incident")


def drives(role: str, assignments: list[AssignmentOut]) -> bool:
    """Whether the agency in `role` moves the incident's status when it acknowledges or
    arrives: the responsible township; the lead unit where no township is assigned."""
    present = {a.role for a in assignments}
    for candidate in ("responsible", "lead", "cooperating"):
        if candidate in present:
            return role == candidate
    return False


async def _plan(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    assignments: list[AssignmentOut],
    data: ActionIn,
    now: datetime,
) -> Change:
    if isinstance(data, AcknowledgeIn | ArriveIn):
        return await _plan_own_step(session, principal, incident, assignments, data, now)
    if isinstance(data, ResolveIn):
        penalty = data.penalty
        return Change(
            "resolved",
            {
                "resolved_at": now,
                "outcome": data.outcome,
                "penalty_kind": None if penalty is None else penalty.kind,
                "penalty_amount_yuan": None if penalty is None else penalty.amount_yuan,
                "legal_basis": None if penalty is None else penalty.legal_basis,
            },
        )
    if isinstance(data, VerifyIn):
        # _authorise let in a supervisor over the cell or a grid worker of the village.
        by = "supervisor" if principal.has_role("supervisor") else "village_worker"
        if data.passed:
            return Change("closed", {"closed_at": now, "verified_at": now, "verified_by": by})
        # Failed verification (返工): back on site against the case's own limit.
        values = {
            "rework_count": INCIDENTS.c.rework_count + 1,
            "due_at": incident.resolve_due_at,
            "verified_by": by,
        }
        return Change("on_site", values)
    if isinstance(data, ReturnIn):
        return Change("returned", {})
    if isinstance(data, SuperviseIn):
        return _plan_supervise(incident, data, now)
    if isinstance(data, RevisitIn):
        return await _plan_revisit(session, incident, data, now)
    if isinstance(data, VoidIn | RejectIn):
        reason = data.reason if isinstance(data, VoidIn) else None
        return Change("rejected", {"closed_at": now, "void_reason": reason})
    return await _plan_reassign(session, principal, incident, data, now)


def _plan_supervise(incident: Incident, data: SuperviseIn, now: datetime) -> Change:
    """督办: the level and the supervisor's own deadline; the status stays."""
    if data.due_at is not None and data.due_at <= now:
        raise _invalid("due_at", "the supervisor's deadline must be in the future")
    values = {
        "supervision_level": data.level,
        "supervised_at": incident.supervised_at or now,
        "supervision_due_at": data.due_at,
    }
    due = "" if data.due_at is None else f", due {data.due_at.astimezone(UTC).isoformat()}"
    note = f"{data.level}{due}" + ("" if data.note is None else f": {data.note}")
    return Change(incident.status, values, extra={"note": note})


async def _plan_revisit(
    session: AsyncSession, incident: Incident, data: RevisitIn, now: datetime
) -> Change:
    """回头看: passed leaves it closed; failed reopens it as rework, limits from now."""
    if incident.closed_at is None or now - incident.closed_at > REVISIT_WINDOW:
        raise errors.InvalidTransition("a case is revisited within 30 days of its closing")
    if data.passed:
        return Change("closed", {"revisited_at": now})
    category = await _category(session, incident.category)
    values = {
        "revisited_at": now,
        "closed_at": None,
        "verified_at": None,
        "acknowledged_at": None,
        "arrived_at": None,
        "rework_count": INCIDENTS.c.rework_count + 1,
        "due_at": now + timedelta(minutes=category.acknowledge_minutes),
        "resolve_due_at": now + timedelta(minutes=category.resolve_minutes),
    }
    limits = incident_service.step_limits(category, now)
    return Change("dispatched", values, extra={"reopen": limits})


async def _plan_own_step(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    assignments: list[AssignmentOut],
    data: AcknowledgeIn | ArriveIn,
    now: datetime,
) -> Change:
    """The caller's agency records its own step; the incident moves only when the agency
    that drives it takes the step (otherwise its status stays and only its version moves)."""
    own = next(a for a in assignments if a.agency.code == principal.agency_code)
    moves = drives(own.role, assignments)
    if isinstance(data, AcknowledgeIn):
        if own.acknowledged_at is not None:
            raise errors.InvalidTransition("your agency has already acknowledged this incident")
        if not moves:
            return Change(incident.status, {})
        category = await _category(session, incident.category)
        start = await _limits_start(session, incident)
        due = start + timedelta(minutes=category.arrive_minutes)
        return Change("acknowledged", {"acknowledged_at": now, "due_at": due})
    if own.acknowledged_at is None:
        raise errors.InvalidTransition("your agency must acknowledge before it arrives")
    if own.arrived_at is not None:
        raise errors.InvalidTransition("your agency has already arrived")
    if not moves:
        return Change(incident.status, {})
    return Change("on_site", {"arrived_at": now, "due_at": incident.resolve_due_at})


async def _plan_reassign(
    session: AsyncSession, principal: Principal, incident: Incident, data: ReassignIn, now: datetime
) -> Change:
    """Another village and/or category; the time limits start again from now."""
    category = await _category(session, data.category or incident.category, field="category")
    values: dict[str, Any] = {"category": category.code}
    if data.cell_code is not None:
        cell = await access.cell_scope(session, data.cell_code)
        if cell is None or cell.level != "village":
            raise _invalid("cell_code", f"{data.cell_code!r} is not a village of the grid")
        village, township, district = cell.lineage
        if district != incident.district_code:
            raise _invalid("cell_code", "an incident cannot move to another district")
        if not cell.is_under(principal.cell_code):
            raise errors.Forbidden("the village is outside your cell")
        values.update(village_code=village, township_code=township)
    values.update(
        due_at=now + timedelta(minutes=category.acknowledge_minutes),
        resolve_due_at=now + timedelta(minutes=category.resolve_minutes),
        acknowledged_at=None,
        arrived_at=None,
    )
    return Change("dispatched", values, category=category)


async def _category(session: AsyncSession, code: str, field: str | None = None) -> Category:
    category = await session.get(Category, code)
    if category is None:
        if field is not None:
            raise _invalid(field, f"unknown category {code!r}")
        raise errors.Conflict(f"the incident's category {code!r} no longer exists")
    return category


def _invalid(field_name: str, msg: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(msg, errors=[{"loc": ["body", field_name], "msg": msg}])


async def _limits_start(session: AsyncSession, incident: Incident) -> datetime:
    """Limits count from the opening, or from the latest reassignment or reopening."""
    conn = await session.connection()
    restarts = or_(
        _EVENTS.c.action == "reassign",
        and_(_EVENTS.c.action == "revisit", _EVENTS.c.to_status == "dispatched"),  # reopened
    )
    latest = await conn.execute(
        select(func.max(_EVENTS.c.at)).where(_EVENTS.c.incident_id == incident.id, restarts)
    )
    at: datetime | None = latest.scalar()  # max() keeps the column's type: an aware datetime
    return incident.opened_at if at is None else at


async def _compare_and_set(
    session: AsyncSession, incident: Incident, change: Change, now: datetime
) -> bool:
    conn = await session.connection()
    result = await conn.execute(
        update(INCIDENTS)
        .where(INCIDENTS.c.id == incident.id, INCIDENTS.c.version == incident.version)
        .values(
            status=change.to_status,
            version=INCIDENTS.c.version + 1,
            updated_at=now,
            **change.values,
        )
    )
    return bool(result.rowcount == 1)


async def _after_write(
    session: AsyncSession,
    principal: Principal,
    incident_id: str,
    data: ActionIn,
    from_status: str,
    change: Change,
    now: datetime,
) -> IncidentOut:
    """Assignments, the timeline entry and the outbox event, in the action's transaction."""
    incident = await _read(session, incident_id)
    assert incident is not None
    conn = await session.connection()
    if isinstance(data, AcknowledgeIn | ArriveIn):
        step = "acknowledged_at" if isinstance(data, AcknowledgeIn) else "arrived_at"
        await conn.execute(
            update(ASSIGNMENTS)
            .where(
                ASSIGNMENTS.c.incident_id == incident_id,
                ASSIGNMENTS.c.agency_code == principal.agency_code,
            )
            .values({step: now})
        )
    event_row = incident_service.event_row
    to_status, note = change.to_status, change.extra.get("note", data.note)
    action = "void" if isinstance(data, RejectIn) else data.action  # one name for one act
    session.add(
        IncidentEvent(**event_row(incident, principal, now, action, from_status, to_status, note))
    )
    reopen = change.extra.get("reopen")
    if isinstance(reopen, incident_service.StepLimits):  # every agency's part starts again
        await conn.execute(
            update(ASSIGNMENTS)
            .where(ASSIGNMENTS.c.incident_id == incident_id)
            .values(
                acknowledged_at=None,
                arrived_at=None,
                acknowledge_due_at=reopen.acknowledge_due_at,
                arrive_due_at=reopen.arrive_due_at,
            )
        )
    if change.category is not None:  # reassign: the old agencies lose it
        await conn.execute(delete(ASSIGNMENTS).where(ASSIGNMENTS.c.incident_id == incident_id))
        routed = await incident_service.assign(session, incident, change.category, now)
        routes = "; ".join(f"{a.role}: {a.agency.code}" for a in routed)
        session.add(IncidentEvent(**event_row(incident, principal, now, "routed", note=routes)))
    await session.flush()
    located = await grid_service.chain(session, incident.village_code)
    assignments = await incident_service.assignments_of(session, incident_id)
    item = incident_out(incident, located, assignments, now)
    payload = {
        "id": incident.id,
        "case_number": incident.case_number,
        "status": incident.status,
        "version": incident.version,
        "change": action,
        "from_status": from_status,
        "to_status": change.to_status,
        "note": data.note,
        "incident": item.model_dump(mode="json"),
    }
    await outbox.emit(
        session,
        "incident.updated",
        payload,
        now,
        incident_id=incident.id,
        district_code=incident.district_code,
    )
    return item
