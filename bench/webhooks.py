"""Webhook delivery end to end, as operators run it.

A receiver process (bench/receiver.py) listens on 127.0.0.1; the bench subscribes it to every
event type through `POST /api/v1/webhooks` with an API key an admin made with
`burnban apikeys create --scope webhooks:manage`; events arise as in real life, from reports
posted through the product (the load generator's `reports` requests: report.created and
incident.created, or incident.updated when a report merges); `burnban worker` delivers them.

- `webhooks`: a backlog. Reports are posted at full concurrency (at most `webhook_reports`, for
  at most the run's duration) with no worker running; then `burnban worker` starts and drains
  the backlog. Events/s is its drain rate.
- `webhooks-1`: live. The worker runs while one client posts reports for the run's duration;
  the delays are those of a webhook at that pace.

Either way every event made after the subscription must reach the receiver exactly once: the
bench counts duplicates, missing and unexpected ids, attempts the worker recorded as failed
(non-2xx or no answer), and checks the Standard Webhooks signature of every 20th delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from bench import database, loadgen
from bench.database import BenchDatabase
from bench.server import ROOT, RssSampler, Server, delivering, free_port
from bench.workloads import Target

EVENT_TYPES = ("incident.created", "incident.updated", "report.created")
STALL_S = 30.0  # no new receipt for this long: what has not arrived is missing
GRACE_S = 0.5  # kept listening after the last expected event, for duplicates
TOLERANCE_S = 300  # Standard Webhooks: a webhook-timestamp further from now is refused
_SAMPLE_ERRORS = 5


@dataclass(frozen=True)
class Subscription:
    id: str
    secret: str


@dataclass(frozen=True)
class Posting:
    """How long reports are posted, and at most how many for the backlog."""

    duration: float
    backlog: int


@dataclass(frozen=True)
class Outcome:
    """What one webhook workload measured: the load-result dict and the worker's peak RSS."""

    load: dict[str, Any]
    rss_mb: float


class Receiver:
    """The receiver process and how to ask it what arrived."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def count(self) -> int:
        return int(httpx.get(self.url + "/_bench/count").text)

    def received(self) -> dict[str, Any]:
        document: dict[str, Any] = httpx.get(self.url + "/_bench/received", timeout=60).json()
        return document


@contextmanager
def receiving(db: BenchDatabase) -> Iterator[Receiver]:
    """`python -m bench.receiver` on a free port, until the block ends."""
    port = free_port()
    log = db.workdir / f"receiver-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    receiver = Receiver(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                receiver.count()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the receiver did not start:\n{log.read_text()}") from None
                time.sleep(0.05)
        yield receiver
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(
    name: str,
    live: bool,
    concurrency: int,
    target: Target,
    server: Server,
    db: BenchDatabase,
    posting: Posting,
    log: Callable[[str], None],
) -> Outcome:
    """Run the `webhooks` (a backlog) or, `live`, the `webhooks-1` workload."""

    def post_reports() -> dict[str, Any]:
        if live:
            log(f"{db.kind}: {name}: worker running, one client posting reports")
        else:
            log(f"{db.kind}: {name}: posting up to {posting.backlog:,} reports, no worker yet")
        return loadgen.launch(
            db.workdir, name, target, "reports", concurrency, 0.0,
            posting.duration, None if live else posting.backlog,
        )  # fmt: skip

    with receiving(db) as receiver:
        before = int(database.fetch(db, "SELECT COALESCE(MAX(id), 0) FROM outbox_events")[0][0])
        subscription = _subscribe(server, target, receiver)
        try:
            backlog = None if live else post_reports()
            with delivering(db) as worker, RssSampler(worker.processes) as rss:
                production = post_reports() if backlog is None else backlog
                created, reports = _events_after(db, before)
                log(f"{db.kind}: {name}: waiting for {len(created):,} events to arrive")
                _wait(receiver, len(created))
            received = receiver.received()
            bookkeeping = _bookkeeping(db, subscription.id)
        finally:
            _unsubscribe(server, target, subscription)
    load = _judge(created, received, subscription, bookkeeping, worker.started_at)
    load["reports"] = reports
    load["posting"] = {k: production[k] for k in ("throughput", "p99_ms", "statuses")}
    load["errors"] += production["errors"]
    load["error_samples"] += production["error_samples"]
    return Outcome(load, rss.peak_mb)


def _subscribe(server: Server, target: Target, receiver: Receiver) -> Subscription:
    answer = httpx.post(
        server.base_url + "/api/v1/webhooks",
        json={"url": receiver.url + "/hook", "events": list(EVENT_TYPES)},
        headers={"X-API-Key": target.webhook_key},
    )
    if answer.status_code != 201:
        raise RuntimeError(
            f"POST /api/v1/webhooks answered {answer.status_code}: {answer.text[:300]}"
        )
    body = answer.json()
    return Subscription(body["id"], body["secret"])


def _unsubscribe(server: Server, target: Target, subscription: Subscription) -> None:
    """So that later workloads make no deliveries (and the deliveries' rows go)."""
    httpx.delete(
        server.base_url + f"/api/v1/webhooks/{subscription.id}",
        headers={"X-API-Key": target.webhook_key},
    )


def _events_after(db: BenchDatabase, before: int) -> tuple[dict[str, float], int]:
    """webhook-id → creation time (epoch s) of every event made after the subscription, and
    how many reports made them."""
    rows = database.fetch(db, "SELECT id, type, created_at FROM outbox_events WHERE id > ?", before)
    created = {f"evt_{event_id}": database.epoch(at) for event_id, _, at in rows}
    return created, sum(1 for _, event_type, _ in rows if event_type == "report.created")


def _wait(receiver: Receiver, expected: int) -> None:
    """Until `expected` webhooks arrived (and GRACE_S more), or none came for STALL_S."""
    last_count, last_change = -1, time.monotonic()
    while True:
        count = receiver.count()
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        if count >= expected:
            time.sleep(GRACE_S)
            return
        if now - last_change > STALL_S:
            return
        time.sleep(0.05)


def _bookkeeping(db: BenchDatabase, subscription_id: str) -> dict[str, Any]:
    """The worker's own record: deliveries by status, and attempts that were not a 2xx."""
    statuses = dict(
        database.fetch(
            db,
            "SELECT status, COUNT(*) FROM webhook_deliveries WHERE subscription_id = ? "
            "GROUP BY status",
            subscription_id,
        )
    )
    failed = database.fetch(
        db,
        "SELECT a.status_code, a.error FROM webhook_attempts a "
        "JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.subscription_id = ? "
        "AND (a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299)",
        subscription_id,
    )
    return {"deliveries": statuses, "failed_attempts": failed}


def _judge(
    created: dict[str, float],
    received: dict[str, Any],
    subscription: Subscription,
    bookkeeping: dict[str, Any],
    worker_started: float,
) -> dict[str, Any]:
    """The load-result dict: events/s, delay percentiles, and every way delivery went wrong."""
    first_receipt: dict[str, float] = {}
    duplicates = unexpected = 0
    samples: list[str] = []
    for at, webhook_id in zip(received["times"], received["ids"], strict=True):
        if webhook_id not in created:
            unexpected += 1
            _note(samples, f"unexpected webhook-id {webhook_id!r}")
        elif webhook_id in first_receipt:
            duplicates += 1
            _note(samples, f"duplicate {webhook_id}")
        else:
            first_receipt[webhook_id] = at
    missing = sorted(set(created) - set(first_receipt), key=lambda i: int(i.split("_")[1]))
    if missing:
        _note(samples, f"{len(missing)} never arrived, e.g. {', '.join(missing[:5])}")
    for status_code, error in bookkeeping["failed_attempts"]:
        _note(samples, f"worker recorded a failed attempt: {status_code} {error}")
    bad = [problem for s in received["samples"] if (problem := _check(s, subscription.secret))]
    for problem in bad:
        _note(samples, problem)

    delays = np.array([at - created[i] for i, at in first_receipt.items()] or [np.nan]) * 1000
    p50, p95, p99 = (float(np.percentile(delays, q)) for q in (50, 95, 99))
    # From when the first event could go (it existed and a worker ran) to the last receipt.
    start = max(min(created.values(), default=worker_started), worker_started)
    span = max(first_receipt.values(), default=start) - start
    errors = duplicates + len(missing) + unexpected + len(bookkeeping["failed_attempts"]) + len(bad)
    return {
        "requests": len(first_receipt),
        "seconds": round(span, 3),
        "throughput": len(first_receipt) / span if span > 0 else 0.0,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": float(np.max(delays)),
        "errors": errors,
        "statuses": {},
        "events": len(created),
        "delivered": len(first_receipt),
        "duplicates": duplicates,
        "missing": len(missing),
        "unexpected": unexpected,
        "failed_attempts": len(bookkeeping["failed_attempts"]),
        "deliveries": bookkeeping["deliveries"],
        "signatures_checked": len(received["samples"]),
        "bad_signatures": len(bad),
        "error_samples": samples,
    }


def _note(samples: list[str], what: str) -> None:
    if len(samples) < _SAMPLE_ERRORS:
        samples.append(what)


def _check(sample: dict[str, Any], secret: str) -> str | None:
    """What is wrong with one delivery by the Standard Webhooks specification, or None."""
    headers, body = sample["headers"], sample["body"]
    webhook_id = headers.get("webhook-id", "")
    try:
        timestamp = int(headers.get("webhook-timestamp", ""))
    except ValueError:
        return f"{webhook_id}: no webhook-timestamp"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [
        part.split(",", 1)[1]
        for part in headers.get("webhook-signature", "").split()
        if part.startswith("v1,")
    ]
    if not any(hmac.compare_digest(expected, signature) for signature in offered):
        return f"{webhook_id}: the webhook-signature does not match"
    if abs(sample["at"] - timestamp) > TOLERANCE_S:
        return f"{webhook_id}: webhook-timestamp {timestamp} is more than 5 minutes off"
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return f"{webhook_id}: the body is not JSON"
    if document.get("type") not in EVENT_TYPES or not isinstance(document.get("data"), dict):
        return f"{webhook_id}: the body is not {{type, timestamp, data}}"
    return None
