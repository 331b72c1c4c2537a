"""`burnban db backup` and `db restore`: a copy taken while reports keep coming holds every
report acknowledged before it began, is intact, and restores into a new directory with its
photos; on PostgreSQL, the pg_dump to run, checked against the server's version."""

from __future__ import annotations

import asyncio
import shlex
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.db import Database, create_engine
from app.main import create_app
from tests.conftest import TEST_SECRET, settings_for
from tests.db.support import prepare
from tests.factories import report_body
from tests.live import running
from tests.reports.test_photos import jpeg_with_exif

LOAD_REPORTS = 120  # at most, posted by 4 clients; the load stops by itself
_runner = CliRunner()


def _environment(monkeypatch: pytest.MonkeyPatch, url: str, media: Path) -> None:
    monkeypatch.setenv("BURNBAN_DATABASE_URL", url)
    monkeypatch.setenv("BURNBAN_MEDIA_DIR", str(media))
    monkeypatch.setenv("BURNBAN_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("BURNBAN_ENVIRONMENT", raising=False)


def _report(**overrides: str) -> dict[str, object]:
    """A report seen just now: the live server runs on the real clock."""
    observed = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return report_body(observed_at=observed, **overrides)


async def _post_reports(base: str, headers: dict[str, str], acked: list[tuple[float, str]]) -> None:
    """Post reports from 4 clients until LOAD_REPORTS are acknowledged; note when each was."""
    counter = iter(range(LOAD_REPORTS))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in counter:
            body = _report(description=f"负载{i}")
            keyed = {**headers, "Idempotency-Key": f"load-{i}"}
            r = await client.post(f"{base}/api/v1/reports", json=body, headers=keyed)
            assert r.status_code == 201, r.text
            acked.append((time.monotonic(), r.json()["id"]))

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(4)))


async def test_a_backup_under_report_load_restores_every_acknowledged_report(
    backend: str,
    fresh_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL is backed up with pg_dump: the next test")
    settings = settings_for(fresh_database_url, tmp_path)
    settings.rate_limit_writes = 10 * LOAD_REPORTS
    db = Database(create_engine(settings.url, settings))
    try:
        headers = await prepare(db, settings, datetime.now(UTC))
    finally:
        await db.dispose()
    _environment(monkeypatch, fresh_database_url, settings.media_dir)
    acked: list[tuple[float, str]] = []
    with running(create_app(settings)) as base:
        async with httpx.AsyncClient(timeout=60) as client:
            first = await client.post(f"{base}/api/v1/reports", json=_report(), headers=headers)
            photo = await client.post(
                f"{base}/api/v1/reports/{first.json()['id']}/photos",
                files={"file": ("fire.jpg", jpeg_with_exif(), "image/jpeg")},
                headers=headers,
            )
        assert photo.status_code == 201, photo.text
        load = asyncio.create_task(_post_reports(base, headers, acked))
        while len(acked) < 20 and not load.done():
            await asyncio.sleep(0.01)
        began = time.monotonic()
        backed_up = await asyncio.to_thread(
            _runner.invoke, cli, ["db", "backup", str(tmp_path / "backup")]
        )
        await load
    assert backed_up.exit_code == 0, backed_up.output
    assert "integrity ok" in backed_up.output

    restored_dir = tmp_path / "restored"
    _environment(monkeypatch, f"sqlite:///{restored_dir / 'burnban.db'}", restored_dir / "media")
    restored = _runner.invoke(cli, ["db", "restore", str(tmp_path / "backup")])
    again = _runner.invoke(cli, ["db", "restore", str(tmp_path / "backup")])

    assert restored.exit_code == 0, restored.output
    assert again.exit_code == 1 and "--replace" in again.output  # never over a database
    copy = sqlite3.connect(restored_dir / "burnban.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in copy.execute("SELECT id FROM reports")}
    finally:
        copy.close()
    before = {report for at, report in acked if at < began}
    assert len(before) >= 20
    assert before | {first.json()["id"]} <= stored  # every report acknowledged before it
    assert stored <= {report for _, report in acked} | {first.json()["id"]}  # and no other
    assert list((restored_dir / "media").rglob(f"{photo.json()['sha256']}.*"))


def test_on_postgresql_the_backup_names_the_pg_dump_to_run(
    backend: str, fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgis":
        pytest.skip("SQLite is copied by the command itself: the test above")
    _environment(monkeypatch, fresh_database_url, tmp_path / "media")

    shown = _runner.invoke(cli, ["db", "backup", str(tmp_path)])
    refused = _runner.invoke(cli, ["db", "restore", str(tmp_path)])

    assert shown.exit_code == 0, shown.output
    assert "can dump it" in shown.output
    (command,) = [line.strip() for line in shown.output.splitlines() if "pg_dump --" in line]
    dumped = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
    assert dumped.returncode == 0, dumped.stderr
    assert (tmp_path / "burnban.dump").stat().st_size > 0
    assert refused.exit_code == 2 and "pg_restore" in refused.output
