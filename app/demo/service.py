"""Load the demo grid, bureaus and users into a database (idempotent: a demo user that exists
is kept, password and all, unless a reset is asked for)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.auth import security
from app.auth import service as auth_service
from app.auth.models import User
from app.auth.schemas import UserCreate
from app.grid import service as grid_service
from app.grid.models import Cell
from app.grid.schemas import ImportResult
from app.spatial.store import SpatialStore
from geo.data import load_qixing

BUREAUS = (
    ("urban-management", "区城市管理局"),
    ("ecology-environment", "区生态环境分局"),
    ("police", "区公安分局"),
    ("agriculture", "区农业农村局"),
)
DISTRICT = "450305"
TOWNSHIP = "450305001"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str | None  # None: the user was kept with the password it had
    role: str
    bound_to: str


async def load_demo(
    session: AsyncSession, store: SpatialStore, now: datetime, reset: bool = False
) -> tuple[ImportResult, list[DemoLogin]]:
    """Import the demo grid and create the demo users that are missing, with new passwords.
    Users that exist keep their passwords (whoever is logged in with them stays logged in),
    unless `reset`: then every demo user gets a new password and is enabled again."""
    result = await grid_service.import_grid(session, store, load_qixing(), None, now)
    for code, name in BUREAUS:
        if await session.get(Agency, code) is None:
            session.add(Agency(code=code, name=name, kind="bureau", created_at=now))
    await session.flush()
    village = (
        await session.exec(
            select(Cell.code).where(Cell.parent_code == TOWNSHIP).order_by(col(Cell.code))
        )
    ).first()
    assert village is not None, "the demo grid has villages under its first township"
    wanted = [
        ("worker", "网格员（演示）", "grid_worker", village, None),
        ("officer", "七星街道办事员（演示）", "officer", None, TOWNSHIP),
        ("inspector", "城管执法队员（演示）", "officer", None, "urban-management"),
        ("supervisor", "区大气办督查员（演示）", "supervisor", DISTRICT, None),
        ("admin", "系统管理员（演示）", "admin", None, None),
    ]
    logins = []
    for username, name, role, cell, agency in wanted:
        password: str | None = secrets.token_urlsafe(9)
        user = (await session.exec(select(User).where(User.username == username))).first()
        if user is not None and not reset:
            password = None
        elif user is None:
            assert password is not None
            data = UserCreate(
                username=username,
                password=password,
                name=name,
                role=role,
                cell_code=cell,
                agency_code=agency,
            )
            await auth_service.create_user(session, data, None, now)
        else:
            assert password is not None
            user.password_hash = security.hash_password(password)
            user.is_active = True
            session.add(user)
        logins.append(DemoLogin(username, password, role, cell or agency or "everything"))
    return result, logins
