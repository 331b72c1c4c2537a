"""Agency rules: bureaus are created by admins, township agencies by the grid import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.agencies.schemas import AgencyCreate
from app.audit import service as audit
from app.auth.principal import Principal


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


async def list_agencies(session: AsyncSession) -> Sequence[Agency]:
    rows = await session.exec(select(Agency).order_by(col(Agency.kind), col(Agency.code)))
    return list(rows)


async def missing_codes(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    """The codes among `codes` that name no agency."""
    if not codes:
        return []
    found = set(await session.exec(select(Agency.code).where(col(Agency.code).in_(codes))))
    return [code for code in codes if code not in found]
