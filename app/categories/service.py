"""Category rules: routing, time limits and merge rules as data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies import service as agency_service
from app.audit import service as audit
from app.auth.principal import Principal
from app.categories.models import Category
from app.categories.schemas import CategoryIn, CategoryOut, MergeRule, Routing, TimeLimits

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


@dataclass(frozen=True)
class CategoryRule:
    """What a report needs of its category: materials, routing, time limits, merge rule."""

    code: str
    materials: list[str]
    lead: list[str]
    cooperating: list[str]
    acknowledge_minutes: int
    arrive_minutes: int
    resolve_minutes: int
    merge_radius_m: float
    merge_window_minutes: int


_CATEGORIES = Category.__table__  # type: ignore[attr-defined]
_RULE = sa_select(*(_CATEGORIES.c[f.name] for f in fields(CategoryRule))).where(
    _CATEGORIES.c.code == bindparam("code")
)


async def rule_of(session: AsyncSession, code: str) -> CategoryRule | None:
    """The category's rule, or None if there is no such category."""
    conn = await session.connection()
    row = (await conn.execute(_RULE, {"code": code})).mappings().first()
    return None if row is None else CategoryRule(**row)


async def list_categories(session: AsyncSession) -> Sequence[Category]:
    return list(await session.exec(select(Category).order_by(col(Category.code))))


async def get_category(session: AsyncSession, code: str) -> Category:
    category = await session.get(Category, code)
    if category is None:
        raise errors.NotFound(f"no category {code!r}")
    return category


async def put_category(
    session: AsyncSession, code: str, data: CategoryIn, actor: Principal | None, now: datetime
) -> tuple[Category, bool]:
    """Create or replace a category; True when it was created. A `code` in the body (a read
    category put back) must be the path's."""
    if data.code is not None and data.code != code:
        msg = f"code is the path's ({code!r}) and cannot be changed"
        raise errors.ValidationFailed(msg, errors=[{"loc": ["body", "code"], "msg": msg}])
    named = list(dict.fromkeys(data.routing.lead + data.routing.cooperating))
    missing = await agency_service.missing_codes(session, named)
    if missing:
        raise errors.ValidationFailed(
            f"unknown agencies {missing}",
            errors=[{"loc": ["body", "routing"], "msg": f"unknown agency {c!r}"} for c in missing],
        )
    category = await session.get(Category, code)
    created = category is None
    category = category or Category(code=code)  # type: ignore[call-arg]
    category.name = data.name
    category.materials = list(dict.fromkeys(data.materials))
    category.lead = list(dict.fromkeys(data.routing.lead))
    category.cooperating = [
        c for c in dict.fromkeys(data.routing.cooperating) if c not in category.lead
    ]
    category.acknowledge_minutes = data.time_limits.acknowledge_minutes
    category.arrive_minutes = data.time_limits.arrive_minutes
    category.resolve_minutes = data.time_limits.resolve_minutes
    category.merge_radius_m = data.merge.radius_m
    category.merge_window_minutes = data.merge.window_minutes
    category.updated_at = now
    session.add(category)
    await session.flush()
    audit.record(
        session,
        actor,
        "category.created" if created else "category.updated",
        "category",
        code,
        now,
        routing=data.routing.model_dump(),
    )
    return category, created


def to_schema(category: Category) -> CategoryOut:
    return CategoryOut(
        code=category.code,
        name=category.name,
        materials=category.materials,
        routing=Routing(lead=category.lead, cooperating=category.cooperating),
        time_limits=TimeLimits(
            acknowledge_minutes=category.acknowledge_minutes,
            arrive_minutes=category.arrive_minutes,
            resolve_minutes=category.resolve_minutes,
        ),
        merge=MergeRule(
            radius_m=category.merge_radius_m, window_minutes=category.merge_window_minutes
        ),
    )
