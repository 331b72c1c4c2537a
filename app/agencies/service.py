"""Agency rules: bureaus are created by admins, township agencies by the grid import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import literal, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.agencies.schemas import AgencyCreate
from app.audit import service as audit
from app.auth.principal import Principal
from app.pagination import decode_cursor, encode_cursor


async def create_bureau(
    session: AsyncSession, data: AgencyCreate, actor: Principal | None, now: datetime
) -> Agency:
    if await session.get(Agency, data.code) is not None:
        raise errors.Conflict(f"agency {data.code!r} exists")
    agency = Agency(code=data.code, name=data.name, kind=data.kind, created_at=now)
    session.add(agency)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise errors.Conflict(f"agency {data.code!r} exists") from exc
    audit.record(session, actor, "agency.created", "agency", agency.code, now, name=agency.name)
    return agency


async def list_agencies(
    session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[Agency], str | None]:
    """Agencies by kind (bureaus, then townships) and code, one page at a time."""
    order = tuple_(col(Agency.kind), col(Agency.code))
    query = select(Agency).order_by(col(Agency.kind), col(Agency.code)).limit(limit + 1)
    if cursor is not None:
        kind, code = decode_cursor(cursor, 2)
        query = query.where(order > tuple_(literal(str(kind)), literal(str(code))))
    rows = list(await session.exec(query))
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], encode_cursor(last.kind, last.code)
    return rows, None


async def missing_codes(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    """The codes among `codes` that name no agency."""
    if not codes:
        return []
    found = set(await session.exec(select(Agency.code).where(col(Agency.code).in_(codes))))
    return [code for code in codes if code not in found]
