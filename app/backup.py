"""Backups an office can do: a consistent copy of a SQLite database taken while it serves, with
its photos, and the way back; for PostgreSQL, the pg_dump to run and whether it can.

SQLite's online backup API copies the database as one snapshot (a read transaction: in WAL
mode writers go on meanwhile) into a new file, which is then checked whole (`PRAGMA
integrity_check`). Photos are copied after the database, so every photo the copy names is in
the copy (a photo's file is written before its row, and never rewritten).
"""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from app import errors

DATABASE_FILE = "burnban.db"
MEDIA_DIR = "media"
DUMP_FILE = "burnban.dump"
_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Copied:
    """What a backup or a restore copied."""

    database: Path
    reports: int
    photos: int


def sqlite_file(url: URL) -> Path:
    """The database file of a SQLite URL."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise errors.ValidationFailed("not a SQLite database file")
    return Path(url.database)


def backup_sqlite(database: Path, media: Path, dest: Path) -> Copied:
    """Copy the database (consistently, while it serves) and then its photos into `dest`."""
    copy = dest / DATABASE_FILE
    if copy.exists():
        raise errors.Conflict(f"{copy} exists: back up into a new directory")
    if not database.is_file():
        raise errors.NotFound(f"no database at {database}")
    dest.mkdir(parents=True, exist_ok=True)
    _copy_database(database, copy)
    reports = _check(copy)
    photos = _copy_photos(media, dest / MEDIA_DIR)
    return Copied(copy, reports, photos)


def restore_sqlite(source: Path, database: Path, media: Path, replace: bool = False) -> Copied:
    """Put a backup made by `backup_sqlite` in place: the database, checked, then its photos.
    The service must be stopped; an existing database is replaced only when asked."""
    copy = source / DATABASE_FILE
    if not copy.is_file():
        raise errors.NotFound(f"no {DATABASE_FILE} in {source}")
    _check(copy)
    if database.exists() and not replace:
        raise errors.Conflict(f"{database} exists: stop the service and pass --replace")
    database.parent.mkdir(parents=True, exist_ok=True)
    for stale in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)  # of the database replaced: never to be replayed on it
    _copy_database(copy, database)
    reports = _check(database)
    photos = _copy_photos(source / MEDIA_DIR, media)
    return Copied(database, reports, photos)


def _copy_database(source: Path, target: Path) -> None:
    src = sqlite3.connect(source, timeout=_BUSY_TIMEOUT_S)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # every page in one step: one snapshot of the source
    finally:
        dst.close()
        src.close()


def _check(database: Path) -> int:
    """PRAGMA integrity_check of the file, else refused; how many reports it holds."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if verdict != ["ok"]:
            raise errors.Conflict(f"{database} is damaged: {'; '.join(verdict[:5])}")
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise errors.Conflict(f"{database} is not a burnban database: {exc}") from exc
    finally:
        conn.close()


def _copy_photos(source: Path, target: Path) -> int:
    """Photos not yet in `target` (their names are their hashes: one there is the same)."""
    copied = 0
    if not source.is_dir():
        return 0
    for path in source.rglob("*"):
        if not path.is_file() or path.name.startswith(".upload-"):  # one being written
            continue
        into = target / path.relative_to(source)
        if into.exists():
            continue
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, into)
        copied += 1
    return copied


@dataclass(frozen=True)
class DumpPlan:
    """The pg_dump to run, and whether the pg_dump here can dump this server."""

    command: str
    server_major: int
    pg_dump_major: int | None

    @property
    def ready(self) -> bool:
        return self.pg_dump_major is not None and self.pg_dump_major >= self.server_major


def pg_dump_plan(url: URL, server_version_num: int, dest: Path) -> DumpPlan:
    """The command (without the password: give it in PGPASSWORD or ~/.pgpass) for a server of
    `server_version_num` (SHOW server_version_num), with the local pg_dump's major version."""
    plain = url.set(drivername="postgresql", password=None)
    target = plain.render_as_string(hide_password=False)
    command = shlex.join(
        ["pg_dump", "--format=custom", f"--file={dest / DUMP_FILE}", f"--dbname={target}"]
    )
    return DumpPlan(command, server_version_num // 10000, _pg_dump_major())


def _pg_dump_major() -> int | None:
    found = shutil.which("pg_dump")
    if found is None:
        return None
    shown = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)(?:\.\d+)?", shown.stdout)
    return int(match.group(1)) if match else None
