"""`python -m bench [--quick] [...]`, `python -m bench growth` and `python -m bench instructions`:
see bench/README.md."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench import growth, instructions
from bench.grid import bench_grid
from bench.report import loud_errors, save, table
from bench.runner import DatabaseRun, Row, Settings, run_database
from bench.workloads import WORKLOADS

DATABASES = ("sqlite", "postgis")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=("run", "growth", "instructions"), default="run"
    )
    parser.add_argument("--quick", action="store_true", help="CI-sized: small grid, 1.5 s loads")
    parser.add_argument("--villages", type=int, help="grid size (default 100000; quick 1000)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--concurrency", type=int, default=50, help="client connections")
    parser.add_argument("--duration", type=float, help="seconds measured (default 10; quick 1.5)")
    parser.add_argument(
        "--warmup", type=float, help="seconds before measuring (default 2; quick 0.5)"
    )
    parser.add_argument(
        "--incidents", type=int, help="incidents bulk-loaded (default 1000000; quick 10000)"
    )
    parser.add_argument(
        "--webhook-reports",
        type=int,
        help="most reports posted for the webhook backlog (default 2000; quick 300)",
    )
    parser.add_argument(
        "--reports", type=int, default=300, help="instructions: reports counted (default 300)"
    )
    parser.add_argument("--db", default=",".join(DATABASES), help="sqlite,postgis")
    parser.add_argument(
        "--workloads",
        default=",".join(w.name for w in WORKLOADS),
        help="comma-separated, of: " + ", ".join(w.name for w in WORKLOADS),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings(
        workers=args.workers,
        concurrency=args.concurrency,
        warmup=args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0),
        duration=args.duration if args.duration is not None else (1.5 if args.quick else 10.0),
        incidents=args.incidents or (10_000 if args.quick else 1_000_000),
        webhook_reports=args.webhook_reports or (300 if args.quick else 2_000),
    )
    kinds = [k for k in args.db.split(",") if k]
    names = [n for n in args.workloads.split(",") if n]
    unknown = set(kinds) - set(DATABASES) | set(names) - {w.name for w in WORKLOADS}
    if unknown:
        _parser().error(f"unknown: {', '.join(sorted(unknown))}")
    for workload in WORKLOADS:  # an open loop's rate is measured by another workload first
        if workload.name in names and workload.rate_of and workload.rate_of[0] not in names:
            _parser().error(f"{workload.name} needs {workload.rate_of[0]} in --workloads")
    if args.command == "growth":
        return growth.main(kinds, settings, args.quick, _log)
    if args.command == "instructions":
        grid = bench_grid(args.villages or 10_000, _log)
        for kind in kinds:
            each = instructions.count(kind, grid, args.reports, _log)
            print(f"{kind}: {each:,} instructions a report (API process, {grid.villages} villages)")
        return 0
    villages = args.villages or (1_000 if args.quick else 100_000)
    grid = bench_grid(villages, _log)
    runs: list[DatabaseRun] = []
    for kind in kinds:
        try:
            runs.append(run_database(kind, grid, names, settings, _log))
        except RuntimeError as exc:  # setup failed: say so loudly, go on with the next database
            runs.append(DatabaseRun(kind, grid.villages, {}, [Row("setup", "", f"failed: {exc}")]))
            print(f"{'!' * 72}\n!!! {kind}: SETUP FAILED\n{exc}\n{'!' * 72}", flush=True)
            continue
        print(table(runs[-1], settings.workers) + "\n", flush=True)
    options = vars(args) | {"villages": grid.villages} | settings.__dict__
    _log(f"results written to {save(runs, options)}")
    banner = loud_errors(runs)
    if banner:
        print(banner, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
