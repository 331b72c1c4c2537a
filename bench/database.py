"""Fresh bench databases, provisioned with the CLI as an operator would: migrate, import, users."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.grid import BenchGrid

POSTGRES_ADMIN_URL = os.environ.get(
    "BURNBAN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRET_KEY = "bench-secret-key-" + "x" * 40
DATA_KEY = "bench-data-key-" + "y" * 40
PASSWORD = "bench-password-123"
BURNBAN = str(Path(sys.executable).with_name("burnban"))

_BENCH_POINTS = {
    "sqlite": (
        "CREATE TABLE bench_points (id INTEGER PRIMARY KEY, category TEXT NOT NULL, "
        "lon REAL NOT NULL, lat REAL NOT NULL, observed_at TEXT NOT NULL, description TEXT)"
    ),
    "postgis": (
        "CREATE TABLE bench_points (id bigserial PRIMARY KEY, category text NOT NULL, "
        "geom geometry(Point, 4326) NOT NULL, observed_at timestamptz NOT NULL, "
        "description text)"
    ),
}


@dataclass
class BenchDatabase:
    """One throw-away database and the environment a burnban process needs to use it."""

    kind: str  # "sqlite" or "postgis"
    url: str
    workdir: Path
    timings: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # what could not be prepared, and why

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            BURNBAN_DATABASE_URL=self.url,
            BURNBAN_SECRET_KEY=SECRET_KEY,
            BURNBAN_DATA_KEY=DATA_KEY,
            BURNBAN_ENVIRONMENT="production",
            BURNBAN_LOG_LEVEL="WARNING",
            BURNBAN_MEDIA_DIR=str(self.workdir / "media"),
            # 50 clients behind one API key would be throttled at the default 120 writes/min.
            BURNBAN_RATE_LIMIT_WRITES="1000000000",
            # Webhooks go to the bench's receiver on 127.0.0.1, and only `burnban worker`
            # delivers them (SQLite's default would also deliver inside `burnban serve`).
            BURNBAN_WEBHOOK_ALLOW_PRIVATE="true",
            BURNBAN_RUN_WORKER_IN_PROCESS="false",
        )
        return env


@dataclass(frozen=True)
class Credentials:
    """Who the workloads act as (tokens are issued once the server is up)."""

    worker: str
    supervisor: str
    api_key: str  # reports:write
    webhook_key: str  # webhooks:manage


def _pg_url(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


async def _pg_admin(statement: str, url: str = POSTGRES_ADMIN_URL) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(kind: str, workdir: Path) -> BenchDatabase:
    """An empty database: a SQLite file in `workdir`, or a new bench_* PostgreSQL database."""
    if kind == "sqlite":
        return BenchDatabase(kind, f"sqlite:///{workdir / 'bench.db'}", workdir)
    name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return BenchDatabase(kind, _pg_url(name), workdir)


def drop_database(db: BenchDatabase) -> None:
    """Drop a PostgreSQL bench database (SQLite files go with the temporary directory)."""
    if db.kind == "postgis":
        name = db.url.rsplit("/", 1)[1]
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cli(db: BenchDatabase, *args: str) -> str:
    """Run `burnban ARGS` against the database; its output, or an error with its stderr."""
    return clis(db, args)[0]


def clis(db: BenchDatabase, *commands: Sequence[str]) -> list[str]:
    """Run several `burnban` commands side by side (each is mostly a second of imports);
    their outputs, or an error with the stderr of the first that failed."""
    processes = [
        subprocess.Popen(
            [BURNBAN, *args],
            env=db.env(),
            cwd=db.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    outputs = [process.communicate() for process in processes]
    for args, process, (_, stderr) in zip(commands, processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"burnban {' '.join(args[:2])} failed:\n{stderr[-3000:]}")
    return [stdout + stderr for stdout, stderr in outputs]


def provision(db: BenchDatabase, grid: BenchGrid, log: Callable[[str], None]) -> Credentials:
    """Migrate, import the grid, create the bench table, two users and two API keys."""
    started = time.perf_counter()
    cli(db, "db", "upgrade")
    db.timings["db_upgrade_s"] = time.perf_counter() - started
    started = time.perf_counter()
    output = cli(db, "grid", "import", str(grid.geojson))
    db.timings["grid_import_s"] = time.perf_counter() - started
    seconds = db.timings["grid_import_s"]
    log(f"{db.kind}: grid of {grid.villages} villages imported in {seconds:.1f}s")
    for line in output.splitlines():
        log(f"    {line}")
    create_bench_table(db)
    village = f"{grid.townships[0]}001"
    *_, reports_key, webhooks_key = clis(
        db,
        ("users", "create", "bench-worker", "--role", "grid_worker", "--cell", village,
         "--password", PASSWORD),
        ("users", "create", "bench-supervisor", "--role", "supervisor", "--cell",
         grid.district, "--password", PASSWORD),
        ("apikeys", "create", "bench", "--scope", "reports:write"),
        ("apikeys", "create", "bench-webhooks", "--scope", "webhooks:manage"),
    )  # fmt: skip
    return Credentials("bench-worker", "bench-supervisor", _key(reports_key), _key(webhooks_key))


def settle(db: BenchDatabase) -> None:
    """Let the disk go quiet before measuring: what an import or a bulk load (this database's,
    or the previous database's) left to write would otherwise be written during a workload.

    PostgreSQL checkpoints (its WAL and dirty buffers); then the kernel writes back every dirty
    page. A commit waits on the WAL flush, so the one-INSERT baseline follows the disk.
    """
    if db.kind == "postgis":
        asyncio.run(_pg_admin("CHECKPOINT", db.url))
    os.sync()


def _key(output: str) -> str:
    """The key printed by `burnban apikeys create`."""
    match = re.search(r"API key \S+ \([^)]*\): (\S+)", output)
    if match is None:
        raise RuntimeError(f"no key in the output of burnban apikeys create: {output!r}")
    return match.group(1)


def create_bench_table(db: BenchDatabase) -> None:
    """The baseline INSERT's own table; the migrations never create it."""
    if db.kind == "sqlite":
        with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
            conn.execute(_BENCH_POINTS["sqlite"])
    else:
        asyncio.run(_pg_admin(_BENCH_POINTS["postgis"], db.url))


def has_table(db: BenchDatabase, table: str) -> bool:
    """Whether the migrated schema has `table` (features other engineers are still building)."""
    if db.kind == "sqlite":
        found = fetch(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", table)
    else:
        found = fetch(db, "SELECT 1 WHERE to_regclass(?) IS NOT NULL", table)
    return bool(found)


def fetch(db: BenchDatabase, query: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one query, `?` placeholders on both databases (times: see `epoch`)."""
    if db.kind == "sqlite":
        with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query, params).fetchall()
    pieces = query.split("?")
    numbered = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(db.url)
        try:
            return [tuple(row) for row in await conn.fetch(numbered, *params)]
        finally:
            await conn.close()

    return asyncio.run(run())


def epoch(value: datetime | str) -> float:
    """A stored UTC time as seconds since the epoch (SQLite gives the text SQLAlchemy wrote)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.timestamp()


def versions() -> dict[str, str]:
    """SQLite's and PostgreSQL/PostGIS's versions, for the machine description."""

    async def postgres() -> str:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            version = await conn.fetchval("SHOW server_version")
            postgis = await conn.fetchval(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
            )
            return f"{version} (PostGIS {postgis})"
        finally:
            await conn.close()

    try:
        pg = asyncio.run(postgres())
    except (OSError, asyncpg.PostgresError) as exc:
        pg = f"unreachable ({type(exc).__name__})"
    return {"sqlite": sqlite3.sqlite_version, "postgres": pg}
