"""A database that cannot write - its disk full, or read-only - answers 503 with a detail that
says so, stores nothing, keeps what it stored, and serves again once it can write."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL, new_sqlite_database
from tests.db.support import Service, end_every_connection, run_sql, service
from tests.factories import problem_type, report_body


@contextmanager
def small_disk(where: Path, size: str = "8m") -> Iterator[Path]:
    """A small file system of its own (tmpfs), unmounted at the end."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"no small file system can be mounted here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


async def _report(s: Service, n: int) -> httpx.Response:
    return await s.client.post(
        "/api/v1/reports", json=report_body(description=f"第{n}次"), headers=s.worker
    )


def _refused(r: httpx.Response, says: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == problem_type("unavailable")
    assert says in r.json()["detail"]
    assert int(r.headers["Retry-After"]) >= 1


async def _mine(s: Service) -> int:
    r = await s.client.get("/api/v1/reports?mine=true", headers=s.worker)
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_a_full_disk_refuses_writes_until_space_returns(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        with small_disk(tmp_path / "disk") as disk:
            url = await asyncio.to_thread(new_sqlite_database, disk)
            async with service(url, tmp_path) as s:
                assert (await _report(s, 1)).status_code == 201
                filler = _fill(disk)
                full = await _report(s, 2)
                kept = await _mine(s)
                filler.unlink()
                again = await _report(s, 3)
                after = await _mine(s)
    else:  # PostgreSQL's own disk_full (SQLSTATE 53100), raised where a report is stored
        async with service(fresh_database_url, tmp_path) as s:
            assert (await _report(s, 1)).status_code == 201
            await run_sql(fresh_database_url, *_PG_DISK_FULL)
            full = await _report(s, 2)
            kept = await _mine(s)
            await run_sql(fresh_database_url, "DROP TRIGGER disk_full ON reports")
            again = await _report(s, 3)
            after = await _mine(s)
    _refused(full, "disk is full")
    assert kept == 1
    assert again.status_code == 201, again.text
    assert after == 2


_PG_DISK_FULL = (
    "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$",
    "CREATE TRIGGER disk_full BEFORE INSERT ON reports FOR EACH ROW EXECUTE FUNCTION disk_full()",
)


async def test_a_read_only_database_refuses_writes_until_it_can_write_again(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        with small_disk(tmp_path / "disk") as disk:
            url = await asyncio.to_thread(new_sqlite_database, disk)
            async with service(url, tmp_path) as s:
                assert (await _report(s, 1)).status_code == 201
                # Linux remounts read-only only a file system no one has open for writing.
                await s.db.engine.dispose()
                _remount(disk, "ro")
                refused = await _report(s, 2)
                await s.db.engine.dispose()
                _remount(disk, "rw")
                again = await _report(s, 3)
                after = await _mine(s)
    else:  # a database set read-only, as a replica is
        name = make_url(fresh_database_url).database
        async with service(fresh_database_url, tmp_path) as s:
            assert (await _report(s, 1)).status_code == 201
            await run_sql(
                fresh_database_url,
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = on',
            )
            await end_every_connection(fresh_database_url)
            refused = await _report(s, 2)
            await run_sql(
                POSTGRES_ADMIN_URL, f'ALTER DATABASE "{name}" RESET default_transaction_read_only'
            )
            await end_every_connection(fresh_database_url)
            again = await _report(s, 3)
            after = await _mine(s)
    _refused(refused, "read-only")
    assert again.status_code == 201, again.text
    assert after == 2
