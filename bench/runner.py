"""One bench run on one database: provision, serve, probe, load, and judge each workload."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import database, incidents, loadgen, webhooks
from bench.grid import BenchGrid
from bench.server import CpuMeter, RssSampler, Server, run_module, running
from bench.workloads import (
    BY_NAME,
    WORKLOADS,
    Target,
    Workload,
    export_path,
    report_body,
    scorecard_path,
)

Log = Callable[[str], None]
NOT_AVAILABLE = "not available yet"
OPERATIONS = 5000  # locations timed by the "operation" driver


@dataclass(frozen=True)
class Settings:
    """How hard and how long to push."""

    workers: int
    concurrency: int
    warmup: float
    duration: float
    incidents: int = 1_000_000
    webhook_reports: int = 2_000  # the most reports posted for the webhook backlog


@dataclass
class Row:
    """One workload's outcome on one database."""

    workload: str
    describe: str
    status: str  # "ok", "not available yet: …", or "failed: …"
    concurrency: int = 0  # connections (an open loop's at its start; it opens more as needed)
    rate: float | None = None  # an open loop's offered requests a second
    load: dict[str, Any] = field(default_factory=dict)
    rss_mb: float = 0.0
    clients: list[int] = field(default_factory=list)  # client connections by worker
    cpu_ms: dict[str, float] = field(default_factory=dict)  # a request's CPU: api, database
    baseline: str | None = None
    ratio: float | None = None
    goals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> int:
        beside = sum(int(load["errors"]) for load in self.load.get("alongside", {}).values())
        failed = 1 if self.status.startswith("failed") else 0
        return int(self.load.get("errors", 0)) + beside + failed

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
    """Every workload in `names` against a fresh `kind` database holding `grid`, in the order
    of WORKLOADS (which is also the table's)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"burnban-bench-{kind}-"))
    db = database.create_database(kind, workdir)
    rows: list[Row] = []
    try:
        credentials = database.provision(db, grid, log)
        database.settle(db)
        target = Target(
            "127.0.0.1", 0, points_path=str(grid.points), townships=grid.townships,
            district=grid.district,
        )  # fmt: skip
        for server_kind in ("baseline", "product"):
            chosen = [w for w in WORKLOADS if w.name in names and w.server == server_kind]
            if not chosen:
                continue
            with running(server_kind, db, settings.workers) as server:
                aimed = _aim(target, server, credentials if server_kind == "product" else None)
                for workload in chosen:
                    row = _run_workload(workload, aimed, server, db, grid, settings, log, rows)
                    rows.append(row)
    finally:
        database.drop_database(db)
        shutil.rmtree(workdir, ignore_errors=True)
    _judge(rows, kind)
    return DatabaseRun(kind, grid.villages, db.timings, rows)


def _aim(target: Target, server: Server, credentials: database.Credentials | None) -> Target:
    """The target with this server's port and, for the product, fresh tokens."""
    values = asdict(target) | {"port": server.port}
    if credentials is not None:
        values |= {
            "worker_token": _login(server, credentials.worker),
            "supervisor_token": _login(server, credentials.supervisor),
            "api_key": credentials.api_key,
            "webhook_key": credentials.webhook_key,
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
    """Why the workload cannot run yet (its endpoint or tables are not built), or None.
    RuntimeError when what it needs could not be prepared."""
    if workload.needs == "reports":
        answer = httpx.post(
            server.base_url + "/api/v1/reports",
            json=report_body(*json.loads(Path(target.points_path).read_text())[0][:2]),
            headers={"X-API-Key": target.api_key},
        )
        if answer.status_code in (404, 405):
            return "no POST /api/v1/reports"
    if workload.needs == "webhooks":
        answer = httpx.get(
            server.base_url + "/api/v1/webhooks", headers={"X-API-Key": target.webhook_key}
        )
        if answer.status_code == 404:
            return "no GET /api/v1/webhooks"
    if workload.needs == "incidents":
        path = _incidents_probe(workload.name, target)
        answer = httpx.get(server.base_url + path, headers=_supervisor(target), timeout=60)
        if answer.status_code == 404:
            return f"no GET {path.split('?')[0]}"
        if not database.has_table(db, "incidents"):
            return "no incidents table"
        _load_incidents(target, server, db, grid, settings.incidents, log)
    return None


def _incidents_probe(name: str, target: Target) -> str:
    if name == "scorecard":
        return scorecard_path(target.district)
    if name in ("csv-export", "mixed"):
        return export_path(target.district)
    return f"/api/v1/cells/{target.townships[0]}/incidents?limit=50"


def _supervisor(target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.supervisor_token}"}


def _load_incidents(
    target: Target,
    server: Server,
    db: database.BenchDatabase,
    grid: BenchGrid,
    count: int,
    log: Log,
) -> None:
    """Bulk-load the incidents once per database, then check that the product sees them."""
    if "incidents" in db.failed:
        raise RuntimeError(db.failed["incidents"])
    if "incidents_load_s" in db.timings:
        return
    log(f"{db.kind}: bulk-loading {count:,} incidents")
    started = time.perf_counter()
    try:
        incidents.bulk_load(db, grid, count)
        database.settle(db)
        db.timings["incidents_load_s"] = time.perf_counter() - started
        log(f"{db.kind}: loaded in {db.timings['incidents_load_s']:.1f}s")
        page, card = (
            httpx.get(
                server.base_url + _incidents_probe(name, target),
                headers=_supervisor(target),
                timeout=60,
            )
            for name in ("incident-page", "scorecard")
        )
        if not page.is_success or not page.json()["items"]:
            raise RuntimeError(f"the incident page is empty: {page.status_code} {page.text[:300]}")
        if not card.is_success or not (card.json()["incidents"] and card.json()["reports"]):
            raise RuntimeError(
                f"the scorecard counts nothing: {card.status_code} {card.text[:300]}"
            )
    except Exception as exc:  # noqa: BLE001 - any failure fails the incident workloads, not the run
        db.failed["incidents"] = f"loading {count:,} incidents: {type(exc).__name__}: {exc}"
        raise RuntimeError(db.failed["incidents"]) from exc


def _run_workload(
    workload: Workload,
    target: Target,
    server: Server,
    db: database.BenchDatabase,
    grid: BenchGrid,
    settings: Settings,
    log: Log,
    earlier: Sequence[Row] = (),
) -> Row:
    row = Row(workload.name, workload.describe, "ok", baseline=workload.baseline)
    try:
        if workload.rate_of is not None:
            row.rate = _offered_rate(workload.rate_of, earlier)
        missing = _missing(workload, target, server, db, grid, settings, log)
        if missing is not None:
            row.status = f"{NOT_AVAILABLE}: {missing}"
            log(f"{db.kind}: {workload.name}: {row.status}")
            return row
        row.concurrency = workload.concurrency or settings.concurrency
        if workload.driver == "webhooks":
            posting = webhooks.Posting(settings.duration, settings.webhook_reports)
            live = workload.concurrency == 1
            outcome = webhooks.measure(
                workload.name, live, row.concurrency, target, server, db, posting, log
            )
            row.load, row.rss_mb = outcome.load, outcome.rss_mb
            return row
        if workload.driver == "operation":
            log(f"{db.kind}: {workload.name}: {OPERATIONS} calls in-process")
            row.load = _operation(db, target)
            return row
        seconds = settings.duration
        pace = f"{row.concurrency} connections" if row.rate is None else f"{row.rate:.0f} req/s"
        beside = "".join(f", {kind} ×{n}" for kind, n in workload.alongside)
        log(f"{db.kind}: {workload.name} at {pace}{beside} for {seconds:g}s")
        stored = _reports_stored(db) if workload.counts_merges else None
        sampler = RssSampler(server.workers, port=server.port)
        with sampler as rss, CpuMeter(server.workers, db.kind) as cpu:
            row.load = loadgen.launch(
                db.workdir, workload.name, target, workload.name, row.concurrency,
                settings.warmup, settings.duration, rate=row.rate, alongside=workload.alongside,
            )  # fmt: skip
        row.rss_mb, row.clients = rss.peak_mb, rss.clients_split
        # The load ran at this pace through its warm-up too: every request answered is counted.
        # Not with requests of other kinds beside it: their CPU would be charged to its own.
        answered = row.load["throughput"] * (settings.warmup + settings.duration)
        if answered and not workload.alongside:
            row.cpu_ms = cpu.per_request_ms(answered)
        if stored is not None:
            (total, merged), (total_before, merged_before) = _reports_stored(db), stored
            posted = total - total_before
            row.load["merged_share"] = (merged - merged_before) / posted if posted else 0.0
    except Exception as exc:  # noqa: BLE001 - a failed workload is a row that says so
        what = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
        row.status = f"failed: {what}"
        log(f"{db.kind}: {workload.name}: {row.status}")
    return row


def _offered_rate(rate_of: tuple[str, float], earlier: Sequence[Row]) -> float:
    """An open loop's rate: a share of a workload's throughput measured earlier in the run."""
    name, share = rate_of
    source = next((row for row in earlier if row.workload == name), None)
    if source is None or not source.load.get("throughput") or source.errors:
        raise RuntimeError(f"needs `{name}` measured without errors earlier in the same run")
    rate: float = source.load["throughput"] * share
    return rate


def _reports_stored(db: database.BenchDatabase) -> tuple[int, int]:
    """Reports stored, and how many of them joined an incident already open."""
    [(total, merged)] = database.fetch(
        db,
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN opened_incident THEN 0 ELSE 1 END), 0) "
        "FROM reports",
    )
    return int(total), int(merged)


def _operation(db: database.BenchDatabase, target: Target) -> dict[str, Any]:
    """bench/operation.py in a process configured like `burnban serve`."""
    out = db.workdir / "result-operation.json"
    args = (target.points_path, str(OPERATIONS), str(out))
    return run_module("bench.operation", *args, result=out, env=db.env())


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
            passed = goal.passed(value, kind)
            row.goals.append({"goal": goal.label(kind), "value": value, "passed": passed})
