"""Every test runs on SQLite and on PostGIS: a real database built by the real migrations.

Each test gets one connection inside a transaction that is rolled back at the end; the app
under test runs its units of work as savepoints inside it. Tests of behaviour across
connections (concurrency) ask for `fresh_database_url` instead: a database of their own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.clock import FrozenClock
from app.config import Settings, async_url
from app.db import Database, create_engine
from app.main import create_app
from app.migrate import upgrade
from tests.factories import NOW

POSTGRES_ADMIN_URL = os.environ.get(
    "BURNBAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ("sqlite", "postgis")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


async def _admin(statements: list[str]) -> None:
    engine = create_async_engine(
        async_url(POSTGRES_ADMIN_URL), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _postgres_problem() -> str | None:
    """None when PostGIS can be used here, else why not."""
    try:
        asyncio.run(_admin(["SELECT 1"]))
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__})"
    return None


def new_postgres_database(prefix: str = "burnban_test") -> str:
    """A new, migrated PostGIS database; its plain URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin([f'CREATE DATABASE "{name}"']))
    asyncio.run(_admin_in(name, "CREATE EXTENSION IF NOT EXISTS postgis"))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


async def _admin_in(database: str, statement: str) -> None:
    url = async_url(POSTGRES_ADMIN_URL).set(database=database)
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    asyncio.run(_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


def new_sqlite_database(directory: Path) -> str:
    url = f"sqlite:///{directory / f'burnban-{uuid.uuid4().hex[:8]}.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Real argon2, with the cost turned down: the suite creates hundreds of users."""
    from argon2 import PasswordHasher

    from app.auth import security

    production = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    security._hasher = production


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    return _postgres_problem()


def _require_postgres(problem: str | None) -> None:
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but the PostGIS half cannot run: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def _migrated_urls(
    tmp_path_factory: pytest.TempPathFactory, postgres_problem: str | None
) -> Iterator[dict[str, str]]:
    """One migrated database per backend for the whole session, made on first use."""
    urls: dict[str, str] = {}
    yield urls
    if "postgis" in urls:
        drop_postgres_database(urls["postgis"])


@pytest.fixture
def database_url(
    backend: str,
    _migrated_urls: dict[str, str],
    postgres_problem: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The plain URL of the session's migrated database for this backend."""
    if backend == "postgis":
        _require_postgres(postgres_problem)
    if backend not in _migrated_urls:
        _migrated_urls[backend] = (
            new_postgres_database()
            if backend == "postgis"
            else new_sqlite_database(tmp_path_factory.mktemp("sqlite"))
        )
    return _migrated_urls[backend]


@pytest.fixture
def fresh_database_url(backend: str, postgres_problem: str | None, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, for tests that need several connections."""
    if backend == "postgis":
        _require_postgres(postgres_problem)
        url = new_postgres_database("burnban_fresh")
        yield url
        drop_postgres_database(url)
    else:
        yield new_sqlite_database(tmp_path)


def new_empty_postgres_database(prefix: str = "burnban_empty") -> str:
    """A new PostgreSQL database that no migration has touched; its plain URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin([f'CREATE DATABASE "{name}"']))
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def empty_database_url(backend: str, postgres_problem: str | None, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own without any schema: migrations have yet to run."""
    if backend == "postgis":
        _require_postgres(postgres_problem)
        url = new_empty_postgres_database()
        yield url
        drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        secret_key=TEST_SECRET,
        environment="dev",
        media_dir=tmp_path / "media",
        log_format="json",
        log_level="WARNING",
    )


@asynccontextmanager
async def app_client(url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own on the database at `url`, outside any test transaction."""
    settings = settings_for(url, tmp_path)
    db = Database(create_engine(settings.url, settings))
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://burnban.test") as c:
            yield c
    finally:
        await db.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@dataclass
class Harness:
    """What a test talks to: the app over HTTP and the database it is rolled back in."""

    client: httpx.AsyncClient
    db: Database
    settings: Settings
    clock: FrozenClock
    backend: str
    app: FastAPI


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.url, settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def harness(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock, backend: str
) -> AsyncIterator[Harness]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        db = Database(engine, connection=conn)
        app = create_app(settings, database=db, clock=clock)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://burnban.test") as client:
            yield Harness(client, db, settings, clock, backend, app)
        await transaction.rollback()
