"""Tables for people, JSON for comparing runs, and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import database
from bench.runner import DatabaseRun, Row
from bench.workloads import BY_NAME

RESULTS_DIR = Path(__file__).parent / "results"
_HEADER = (
    f"{'workload':<16}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    f"{'errors':>7}{'RSS MB':>8}{'CPU ms':>11}  {'ratio':<16}goals"
)


def commit() -> str:
    """The checked-out commit, with +dirty when tracked files have changed."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (sha or "unknown") + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """CPU, memory and software versions: figures mean little without them."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        **database.versions(),
    }


def _row_line(row: Row) -> str:
    if not row.load:
        return f"{row.workload:<16}  {row.status}"
    load = row.load
    ratio = "" if row.ratio is None else f"{row.ratio:.2f} × {row.baseline}"
    goals = ", ".join(f"{g['goal']}: {'pass' if g['passed'] else 'FAIL'}" for g in row.goals)
    errors = str(load["errors"]) if load["errors"] == 0 else f"{load['errors']} !!"
    cpu = " " + "+".join(f"{ms:.2f}" for ms in row.cpu_ms.values())  # apart from RSS if long
    conns = row.concurrency if row.rate is None else load["connections"]  # open: the most open
    return (
        f"{row.workload:<16}{conns:>6}{load['throughput']:>9.0f}{load['p50_ms']:>9.2f}"
        f"{load['p95_ms']:>9.2f}{load['p99_ms']:>9.2f}{errors:>7}{row.rss_mb:>8.0f}{cpu:>11}  "
        f"{ratio:<16}{goals}"
    )


def table(run: DatabaseRun, workers: int) -> str:
    """The run on one database as a fixed-width table."""
    timings = ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items())
    lines = [
        f"== {run.kind}: {run.villages} villages, {workers} worker(s); {timings}",
        _HEADER,
        *(_row_line(row) for row in run.rows),
    ]
    webhook_rows = [row for row in run.rows if "events" in row.load]
    if webhook_rows:
        lines.append(
            "   webhooks rows: req/s = events delivered a second, p50-p99 = ms from an event's "
            "creation to its receipt, RSS = `burnban worker`, no CPU"
        )
    for row in webhook_rows:
        load = row.load
        lines.append(
            f"   {row.workload}: {load['delivered']:,}/{load['events']:,} events delivered, from "
            f"{load['reports']:,} reports posted at {load['posting']['throughput']:.0f}/s; "
            f"{load['duplicates']} duplicates, {load['missing']} missing, "
            f"{load['signatures_checked'] - load['bad_signatures']}/"
            f"{load['signatures_checked']} signatures good"
        )
    for row in run.rows:
        if "merged_share" in row.load:
            lines.append(
                f"   {row.workload}: {row.load['merged_share']:.0%} of the reports joined an open "
                "incident; the rest opened one (the heavier path)"
            )
    lines.extend(_open_loop_lines(run.rows))
    split = [
        f"{row.workload} {'/'.join(map(str, row.clients))}"
        for row in run.rows
        if row.clients and row.concurrency > 1
    ]
    if workers > 1 and split:
        lines.append(f"   client connections by worker: {', '.join(split)}")
    for row in run.rows:
        for sample in row.load.get("error_samples", []):
            lines.append(f"   {row.workload} error: {sample}")
        for kind, load in row.load.get("alongside", {}).items():
            for sample in load["error_samples"]:
                lines.append(f"   {row.workload} {kind} error: {sample}")
    return "\n".join(lines)


def _open_loop_lines(rows: list[Row]) -> list[str]:
    """How each open loop kept its schedule, what ran beside it, and the p99s side by side."""
    lines = []
    open_rows = [row for row in rows if row.rate is not None and row.load]
    for row in open_rows:
        load, rate_of, source = row.load, BY_NAME[row.workload].rate_of, ""
        if rate_of is not None and row.rate is not None:
            source = f" ({rate_of[1]:g} × {row.rate / rate_of[1]:.0f} of {rate_of[0]})"
        lines.append(
            f"   {row.workload}: open loop, {load['offered_rps']:.0f} req/s offered{source}, "
            f"{load['throughput']:.0f} answered a second, on at most {load['connections']} "
            f"connections; latency from when each was due; the generator sent them "
            f"{load['late_p99_ms']:.1f} ms late at p99 ({load['late_max_ms']:.1f} at most)"
        )
        for kind, beside in load.get("alongside", {}).items():
            connections = dict(BY_NAME[row.workload].alongside).get(kind, 0)
            p50, p99, most = (beside[key] for key in ("p50_ms", "p99_ms", "max_ms"))
            lines.append(
                f"     beside it, {kind} ×{connections} (closed loop): {beside['requests']} "
                f"answered ({beside['answer_bytes'] / 1000:.0f} kB each), "
                f"p50 {p50:.0f} / p99 {p99:.0f} / max {most:.0f} ms"
                + (f", {beside['errors']} errors !!" if beside["errors"] else "")
            )
    if len(open_rows) > 1:
        side = ", ".join(f"{row.workload} {row.load['p99_ms']:.1f} ms" for row in open_rows)
        lines.append(f"   open-loop p99 of the reports: {side}")
    return lines


def save(runs: list[DatabaseRun], options: dict[str, Any]) -> Path:
    """Write the run as JSON under bench/results/<timestamp>-<commit>.json."""
    RESULTS_DIR.mkdir(exist_ok=True)
    sha = commit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}-{sha}.json"
    document = {
        "commit": sha,
        "at": stamp,
        "machine": machine(),
        "options": options,
        "settings": settings_given(),
        "databases": [asdict(run) for run in runs],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    return path


def settings_given() -> dict[str, str]:
    """The BURNBAN_* settings the run was given in its environment (the servers inherit them:
    a pool size, say), but no secret, key or URL."""
    hidden = ("SECRET", "KEY", "URL", "PASSWORD")
    return {
        name: value
        for name, value in sorted(os.environ.items())
        if name.startswith("BURNBAN_") and not any(word in name for word in hidden)
    }


def loud_errors(runs: list[DatabaseRun]) -> str | None:
    """A banner when any request failed, else None."""
    failed = [(run.kind, row) for run in runs for row in run.rows if row.errors]
    if not failed:
        return None
    what = "; ".join(f"{kind} {row.workload}: {row.errors}" for kind, row in failed)
    bar = "!" * 72
    return f"{bar}\n!!! ERRORS DURING THE RUN — the figures are not valid: {what}\n{bar}"
