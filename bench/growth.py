"""`python -m bench growth`: how locate and the incident page cost grow with size."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from bench.grid import bench_grid
from bench.runner import DatabaseRun, Settings, run_database

VILLAGES = (1_000, 10_000, 100_000)
INCIDENTS = (10_000, 100_000, 1_000_000)
INCIDENTS_GRID = 10_000  # villages under the incident-page runs
LOCATE = ("locate", "locate-1")
PAGE = ("incident-page", "incident-page-1")


def main(kinds: Sequence[str], settings: Settings, quick: bool, log: Callable[[str], None]) -> int:
    """Run locate per grid size and the incident page per incident count; print Markdown."""
    located: list[DatabaseRun] = []
    for villages in VILLAGES[:2] if quick else VILLAGES:
        grid = bench_grid(villages, log)
        located += [run_database(kind, grid, LOCATE, settings, log) for kind in kinds]
    paged: list[tuple[int, DatabaseRun]] = []
    grid = bench_grid(INCIDENTS_GRID, log)
    for count in INCIDENTS[:2] if quick else INCIDENTS:
        sized = dataclasses.replace(settings, incidents=count)
        runs = [run_database(kind, grid, PAGE, sized, log) for kind in kinds]
        paged += [(count, run) for run in runs]
        if any(not run.rows[0].load for run in runs):
            break  # not available yet: one line says so
    print(locate_table(located, settings) + "\n\n" + incident_table(paged, settings))
    every = located + [run for _, run in paged]
    return 2 if any(row.errors for run in every for row in run.rows) else 0


def locate_table(runs: Sequence[DatabaseRun], settings: Settings) -> str:
    """One line per database and grid size."""
    lines = [
        f"| database | villages | locate req/s ({settings.concurrency} conns) "
        f"| p99 ms ({settings.concurrency} conns) | p50 ms (1 conn) | p99 ms (1 conn) | RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in sorted(runs, key=lambda r: (r.kind, r.villages)):
        rows = {row.workload: row for row in run.rows}
        many, one = rows["locate"].load, rows["locate-1"].load
        rss = max(rows["locate"].rss_mb, rows["locate-1"].rss_mb)
        lines.append(
            f"| {run.kind} | {run.villages:,} | {many.get('throughput', 0):,.0f} "
            f"| {many.get('p99_ms', 0):.2f} | {one.get('p50_ms', 0):.2f} "
            f"| {one.get('p99_ms', 0):.2f} | {rss:.0f} |"
        )
    return "\n".join(lines)


def incident_table(runs: Sequence[tuple[int, DatabaseRun]], settings: Settings) -> str:
    """One line per database and incident count, or why the page cannot be measured yet."""
    missing = [run.rows[0].status for _, run in runs if not run.rows[0].load]
    if missing:
        return f"Incident page: {missing[0]}."
    lines = [
        f"| database | incidents | page req/s ({settings.concurrency} conns) "
        f"| p99 ms ({settings.concurrency} conns) | p50 ms (1 conn) | p95 ms (1 conn) "
        "| p99 ms (1 conn) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, run in sorted(runs, key=lambda item: (item[1].kind, item[0])):
        rows = {row.workload: row for row in run.rows}
        many, one = rows["incident-page"].load, rows["incident-page-1"].load
        lines.append(
            f"| {run.kind} | {count:,} | {many.get('throughput', 0):,.0f} "
            f"| {many.get('p99_ms', 0):.2f} | {one.get('p50_ms', 0):.2f} "
            f"| {one.get('p95_ms', 0):.2f} | {one.get('p99_ms', 0):.2f} |"
        )
    return "\n".join(lines)
