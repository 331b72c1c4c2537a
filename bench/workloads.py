"""The workloads: one declarative entry each, and the requests they send.

An entry says which server answers it (the product as `burnban serve` runs it, or the baseline
app), how each request is built, which baseline its throughput is divided by, what must exist
before it can run, whether it is a closed loop (N connections) or an open loop (a fixed offered
rate, set from another workload's throughput in the same run), what runs beside it, and its
goals (from DESIGN.md, Performance goals). The webhook workloads post reports with the
`reports` requests and time their events' delivery instead (bench/webhooks.py). This module is
imported by the load-generator process too, so it imports nothing of the app.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

RequestFactory = Callable[[], bytes]
Server = Literal["product", "baseline"]
Database = Literal["sqlite", "postgis"]
CST = timezone(timedelta(hours=8))
NEAR_SHARE = 0.2  # share of reports placed near an earlier one, so that merges happen
EXPORT_DAYS = 30  # a supervisor's CSV export: the district's incidents opened in the last 30 days
# The mixed workload's supervisors: closed loops of (request kind, connections) beside the reports.
SUPERVISORS: tuple[tuple[str, int], ...] = (("scorecard", 2), ("csv-export", 2))


@dataclass(frozen=True)
class Target:
    """Where and as whom requests go; JSON-serialisable for the load-generator process."""

    host: str
    port: int
    worker_token: str = ""
    supervisor_token: str = ""
    api_key: str = ""
    webhook_key: str = ""
    points_path: str = ""
    townships: list[str] = field(default_factory=list)
    district: str = ""


@dataclass(frozen=True)
class Goal:
    """A pass/fail bound on one measured figure, possibly different per database."""

    metric: Literal["p95_ms", "p99_ms", "ratio", "rss_mb"]
    limit: float | dict[str, float]
    below: bool = True

    def limit_for(self, database: str) -> float:
        return self.limit[database] if isinstance(self.limit, dict) else self.limit

    def label(self, database: str) -> str:
        sign = "<" if self.below else "≥"
        unit = {"p95_ms": " ms", "p99_ms": " ms", "ratio": "", "rss_mb": " MB"}[self.metric]
        name = {"ratio": "ratio", "rss_mb": "RSS"}.get(self.metric, self.metric[:3])
        return f"{name} {sign} {self.limit_for(database):g}{unit}"

    def passed(self, value: float, database: str) -> bool:
        limit = self.limit_for(database)
        return value < limit if self.below else value >= limit


@dataclass(frozen=True)
class Workload:
    """One thing the bench measures."""

    name: str
    server: Server
    method: str
    describe: str
    baseline: str | None = None  # the workload whose throughput ours is divided by
    goals: tuple[Goal, ...] = ()
    concurrency: int | None = None  # None: the run's --concurrency
    needs: str | None = None  # a feature probed first; "not available yet" when missing
    # "loadgen": requests from the load generator, timed one by one; "webhooks": reports
    # posted by it, their events delivered by `burnban worker` and timed (bench/webhooks.py);
    # "operation": a service call timed in a process of its own (bench/operation.py).
    driver: Literal["loadgen", "webhooks", "operation"] = "loadgen"
    # Reports: say how many joined an open incident (opening one is the heavier path).
    counts_merges: bool = False
    # An open loop: requests offered at this share of the named workload's throughput, measured
    # earlier in the same run (its closed loop at the run's connections: the most it answers).
    rate_of: tuple[str, float] | None = None
    # Closed loops of other requests run at the same time, measured on their own.
    alongside: tuple[tuple[str, int], ...] = ()


RSS = Goal("rss_mb", 250.0)
WORKLOADS: tuple[Workload, ...] = (
    Workload("bare", "baseline", "GET", "baseline: GET /bench/bare, a constant JSON object"),
    Workload("bare-1", "baseline", "GET", "the bare baseline with one client", concurrency=1),
    Workload(
        "insert",
        "baseline",
        "POST",
        "baseline: POST /bench/insert, parse a report body, one INSERT of a point",
    ),
    Workload(
        "locate",
        "product",
        "GET",
        "GET /api/v1/cells/locate at random points of the grid (grid worker token)",
        baseline="bare",
        goals=(RSS,),
    ),
    Workload(
        "locate-1",
        "product",
        "GET",
        "locate with one client: one location over HTTP (token, unit of work, JSON)",
        baseline="bare-1",
        goals=(RSS,),
        concurrency=1,
    ),
    Workload(
        "locate-op",
        "product",
        "-",
        "the location itself (grid.service.locate in a begun unit of work), no HTTP",
        goals=(Goal("p99_ms", 1.0),),
        concurrency=1,
        driver="operation",
    ),
    # Before `reports`: a worker first reads past every event already in the outbox, and it
    # reads 50 a second when none of them is for a subscriber (see bench/README.md).
    Workload(
        "webhooks",
        "product",
        "POST",
        "reports posted with no worker running, then `burnban worker` drains their events",
        needs="webhooks",
        driver="webhooks",
    ),
    Workload(
        "webhooks-1",
        "product",
        "POST",
        "`burnban worker` running while one client posts reports: a webhook's delay",
        concurrency=1,
        needs="webhooks",
        driver="webhooks",
    ),
    Workload(
        "reports",
        "product",
        "POST",
        "POST /api/v1/reports, fresh Idempotency-Key, 20 % near earlier points (API key)",
        baseline="insert",
        goals=(Goal("ratio", {"sqlite": 0.25, "postgis": 0.33}, below=False), RSS),
        needs="reports",
        counts_merges=True,
    ),
    Workload(
        "incident-page",
        "product",
        "GET",
        "GET /api/v1/cells/{township}/incidents, first page, 1 000 000 incidents stored",
        baseline="bare",
        goals=(RSS,),
        needs="incidents",
    ),
    Workload(
        "incident-page-1",
        "product",
        "GET",
        "the incident page with one client: the latency of one page",
        baseline="bare-1",
        goals=(Goal("p95_ms", 25.0), RSS),
        concurrency=1,
        needs="incidents",
    ),
    Workload(
        "scorecard",
        "product",
        "GET",
        "GET /api/v1/cells/{district}/stats over the last year, 1 000 000 incidents stored",
        baseline="bare-1",
        goals=(Goal("p99_ms", 1000.0), RSS),
        concurrency=1,
        needs="incidents",
    ),
    Workload(
        "csv-export",
        "product",
        "GET",
        "GET /api/v1/cells/{district}/incidents?format=csv, the last 30 days, one client",
        baseline="bare-1",
        goals=(RSS,),
        concurrency=1,
        needs="incidents",
    ),
    # Open loops, last: after the incidents' load, back to back, so that they compare.
    Workload(
        "reports-open",
        "product",
        "POST",
        "POST /api/v1/reports in an open loop at half of `reports`' req/s, p99 from when due",
        goals=(Goal("p99_ms", 50.0), RSS),
        needs="reports",
        counts_merges=True,
        rate_of=("reports", 0.5),
    ),
    Workload(
        "mixed",
        "product",
        "POST",
        "reports-open's reports while supervisors run scorecards and CSV exports (closed loops)",
        goals=(Goal("p99_ms", 100.0), RSS),
        needs="incidents",
        counts_merges=True,
        rate_of=("reports", 0.5),
        alongside=SUPERVISORS,
    ),
)
BY_NAME = {w.name: w for w in WORKLOADS}


def _request(target: Target, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _points(target: Target) -> list[list[float]]:
    """[lon, lat, near_lon, near_lat] rows: a point inside the grid and one within ~100 m."""
    with open(target.points_path, encoding="utf-8") as f:
        points: list[list[float]] = json.load(f)
    return points


def report_body(lon: float, lat: float) -> dict[str, object]:
    """A report as a grid worker's app sends it."""
    return {
        "category": "open_burning",
        "material": "straw",
        "location": {"lon": lon, "lat": lat, "crs": "wgs84", "accuracy_m": 12},
        "observed_at": datetime.now(CST).isoformat(timespec="seconds"),
        "description": "田间焚烧秸秆，烟较大",
    }


def _bare(target: Target) -> RequestFactory:
    request = _request(target, "GET", "/bench/bare", {}, b"")
    return lambda: request


def _insert(target: Target) -> RequestFactory:
    points, rng = _points(target), random.Random(2)
    json_type = {"Content-Type": "application/json"}

    def make() -> bytes:
        lon, lat, _, _ = rng.choice(points)
        body = json.dumps(report_body(lon, lat), ensure_ascii=False).encode()
        return _request(target, "POST", "/bench/insert", json_type, body)

    return make


def _locate(target: Target) -> RequestFactory:
    points, rng = _points(target), random.Random(3)
    auth = {"Authorization": f"Bearer {target.worker_token}"}

    def make() -> bytes:
        lon, lat, _, _ = rng.choice(points)
        return _request(target, "GET", f"/api/v1/cells/locate?lon={lon}&lat={lat}", auth, b"")

    return make


def _reports(target: Target, seed: int = 4) -> RequestFactory:
    points, rng = _points(target), random.Random(seed)
    earlier: list[int] = []

    def make() -> bytes:
        if earlier and rng.random() < NEAR_SHARE:
            _, _, lon, lat = points[rng.choice(earlier)]
        else:
            index = rng.randrange(len(points))
            earlier.append(index)
            lon, lat = points[index][0], points[index][1]
        headers = {
            "X-API-Key": target.api_key,
            "Idempotency-Key": os.urandom(16).hex(),
            "Content-Type": "application/json",
        }
        body = json.dumps(report_body(lon, lat), ensure_ascii=False).encode()
        return _request(target, "POST", "/api/v1/reports", headers, body)

    return make


def _incident_page(target: Target) -> RequestFactory:
    rng = random.Random(5)
    auth = {"Authorization": f"Bearer {target.supervisor_token}"}

    def make() -> bytes:
        path = f"/api/v1/cells/{rng.choice(target.townships)}/incidents?limit=50"
        return _request(target, "GET", path, auth, b"")

    return make


def scorecard_path(district: str) -> str:
    """The district's scorecard over the last year."""
    to = datetime.now(UTC).replace(microsecond=0)
    start = to - timedelta(days=365)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return f"/api/v1/cells/{district}/stats?from={start.strftime(iso)}&to={to.strftime(iso)}"


def _scorecard(target: Target) -> RequestFactory:
    auth = {"Authorization": f"Bearer {target.supervisor_token}"}
    request = _request(target, "GET", scorecard_path(target.district), auth, b"")
    return lambda: request


def export_path(district: str) -> str:
    """The district's incidents opened in the last EXPORT_DAYS days, as CSV (streamed)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=EXPORT_DAYS)
    since = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"/api/v1/cells/{district}/incidents?format=csv&from={since}"


def _csv_export(target: Target) -> RequestFactory:
    auth = {"Authorization": f"Bearer {target.supervisor_token}"}
    request = _request(target, "GET", export_path(target.district), auth, b"")
    return lambda: request


_FACTORIES: dict[str, Callable[[Target], RequestFactory]] = {
    "bare": _bare,
    "bare-1": _bare,
    "insert": _insert,
    "locate": _locate,
    "locate-1": _locate,
    "reports": _reports,
    "incident-page": _incident_page,
    "incident-page-1": _incident_page,
    "scorecard": _scorecard,
    "csv-export": _csv_export,
    # The open loops post elsewhere than `reports` did (their own draws of the sample points).
    "reports-open": lambda target: _reports(target, seed=6),
    "mixed": lambda target: _reports(target, seed=7),
}


def request_factory(workload: str, target: Target) -> RequestFactory:
    """A callable giving the raw bytes of the workload's next request."""
    return _FACTORIES[workload](target)
