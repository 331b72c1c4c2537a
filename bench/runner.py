"""One bench run on one database: provision, serve, probe, load, and judge each workload."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import database, incidents
from bench.grid import BenchGrid
from bench.server import ROOT, RssSampler, Server, running
from bench.workloads import BY_NAME, Target, Workload, report_body, scorecard_path

Log = Callable[[str], None]
NOT_AVAILABLE = "not available yet"


@dataclass(frozen=True)
class Settings:
    """How hard and how long to push."""

    workers: int
    concurrency: int
    warmup: float
    duration: float
    incidents: int = 1_000_000


@dataclass
class Row:
    """One workload's outcome on one database."""

    workload: str
    describe: str
    status: str  # "ok", "not available yet: …", or "failed: …"
    concurrency: int = 0
    load: dict[str, Any] = field(default_factory=dict)
    rss_mb: float = 0.0
    baseline: str | None = None
    ratio: float | None = None
    goals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return int(self.load.get("errors", 0)) + (1 if self.status.startswith("failed") else 0)

    @property
    def passed(self) -> bool:
        return self.errors == 0 and all(goal["passed"] for goal in self.goals)


@dataclass
class DatabaseRun:
    kind: str
    villages: int
    timings: dict[str, float]
    rows: list[Row]


def run_database(
    kind: str, grid: BenchGrid, names: Sequence[str], settings: Settings, log: Log
) -> DatabaseRun:
    """Every workload in `names` against a fresh `kind` database holding `grid`."""
    workdir = Path(tempfile.mkdtemp(prefix=f"burnban-bench-{kind}-"))
    db = database.create_database(kind, workdir)
    rows: dict[str, Row] = {}
    try:
        credentials = database.provision(db, grid, log)
        target = Target(
            "127.0.0.1", 0, points_path=str(grid.points), townships=grid.townships,
            district=grid.district,
        )  # fmt: skip
        for server_kind in ("baseline", "product"):
            chosen = [BY_NAME[n] for n in names if BY_NAME[n].server == server_kind]
            if not chosen:
                continue
            with running(server_kind, db, settings.workers) as server:
                aimed = _aim(target, server, credentials if server_kind == "product" else None)
                for workload in chosen:
                    rows[workload.name] = _run_workload(
                        workload, aimed, server, db, grid, settings, log
                    )
    finally:
        database.drop_database(db)
        shutil.rmtree(workdir, ignore_errors=True)
    ordered = [rows[n] for n in names if n in rows]
    _judge(ordered, kind)
    return DatabaseRun(kind, grid.villages, db.timings, ordered)


def _aim(target: Target, server: Server, credentials: database.Credentials | None) -> Target:
    """The target with this server's port and, for the product, fresh tokens."""
    values = asdict(target) | {"port": server.port}
    if credentials is not None:
        values |= {
            "worker_token": _login(server, credentials.worker),
            "supervisor_token": _login(server, credentials.supervisor),
            "api_key": credentials.api_key,
        }
    return Target(**values)


def _login(server: Server, username: str) -> str:
    answer = httpx.post(
        server.base_url + "/api/v1/auth/token",
        data={"username": username, "password": database.PASSWORD},
    )
    if answer.status_code != 200:
        raise RuntimeError(
            f"login as {username} answered {answer.status_code}: {answer.text[:300]}\n"
            f"server log:\n{server.log.read_text()[-3000:]}"
        )
    token: str = answer.json()["access_token"]
    return token


def _missing(
    workload: Workload,
    target: Target,
    server: Server,
    db: database.BenchDatabase,
    grid: BenchGrid,
    settings: Settings,
    log: Log,
) -> str | None:
    """Why the workload cannot run yet (its endpoint or tables are not built), or None."""
    if workload.needs == "reports":
        answer = httpx.post(
            server.base_url + "/api/v1/reports",
            json=report_body(*json.loads(Path(target.points_path).read_text())[0][:2]),
            headers={"X-API-Key": target.api_key},
        )
        if answer.status_code in (404, 405):
            return "no POST /api/v1/reports"
    if workload.needs == "incidents":
        path = {
            "incident-page": f"/api/v1/cells/{target.townships[0]}/incidents?limit=1",
            "scorecard": scorecard_path(target.district),
        }[workload.name]
        answer = httpx.get(
            server.base_url + path, headers={"Authorization": f"Bearer {target.supervisor_token}"}
        )
        if answer.status_code == 404:
            return f"no GET {path.split('?')[0]}"
        if not database.has_table(db, "incidents"):
            return "no incidents table"
        if "incidents_load_s" not in db.timings:
            log(f"{db.kind}: bulk-loading {settings.incidents:,} incidents")
            started = time.perf_counter()
            incidents.bulk_load(db, grid, settings.incidents)
            db.timings["incidents_load_s"] = time.perf_counter() - started
    return None


def _run_workload(
    workload: Workload,
    target: Target,
    server: Server,
    db: database.BenchDatabase,
    grid: BenchGrid,
    settings: Settings,
    log: Log,
) -> Row:
    row = Row(workload.name, workload.describe, "ok", baseline=workload.baseline)
    missing = _missing(workload, target, server, db, grid, settings, log)
    if missing is not None:
        row.status = f"{NOT_AVAILABLE}: {missing}"
        log(f"{db.kind}: {workload.name}: {row.status}")
        return row
    row.concurrency = workload.concurrency or settings.concurrency
    spec = {
        "target": asdict(target),
        "workload": workload.name,
        "concurrency": row.concurrency,
        "warmup": settings.warmup,
        "duration": settings.duration,
    }
    spec_path = db.workdir / f"spec-{workload.name}.json"
    result_path = db.workdir / f"result-{workload.name}.json"
    spec_path.write_text(json.dumps(spec))
    log(f"{db.kind}: {workload.name} at {row.concurrency} connections for {settings.duration:g}s")
    with RssSampler(server) as rss:
        done = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", str(spec_path), str(result_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    row.rss_mb = rss.peak_mb
    if done.returncode != 0:
        row.status = f"failed: load generator exited {done.returncode}: {done.stderr[-500:]}"
        return row
    row.load = json.loads(result_path.read_text())
    return row


def _judge(rows: list[Row], kind: str) -> None:
    """Ratios to baselines, then every goal's verdict."""
    by_name = {row.workload: row for row in rows}
    for row in rows:
        base = by_name.get(row.baseline or "")
        if base is not None and base.load.get("throughput") and row.load:
            row.ratio = row.load["throughput"] / base.load["throughput"]
        if not row.load:
            continue
        for goal in BY_NAME[row.workload].goals:
            value = {"ratio": row.ratio, "rss_mb": row.rss_mb}.get(goal.metric)
            if goal.metric in ("p95_ms", "p99_ms"):
                value = row.load[goal.metric]
            if value is None:
                continue
            row.goals.append(
                {"goal": goal.label(kind), "value": value, "passed": goal.passed(value, kind)}
            )
