"""Instructions a report costs the API process: `python -m bench instructions`.

This VM's pace moves by a fifth from one run to the next, more than most single changes to the
report path make, so such a change is also measured by what does not move: the instructions
the API's own process executes for a report, counted by valgrind (callgrind). The ASGI app is
driven in-process (no HTTP server, no load generator) by `TASKS` concurrent tasks, on a fresh
database provisioned as for `python -m bench`; each run posts `WARMUP` reports, then N more.
Two runs, N = `BASE` and N = `BASE` + `--reports`, on fresh databases with the same points and
keys, and the difference of their totals over `--reports` is the figure: the process's start,
imports and warm-up cancel out. Valgrind runs Python ~50 times slower: a few minutes.

A count is not a time (the instructions a change removes may have been cheap ones), so a
change's effect on the workloads is still measured by `python -m bench`, back to back.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import database
from bench.grid import BenchGrid
from bench.workloads import NEAR_SHARE, report_body

TASKS = 10
WARMUP = 100
BASE = 100


def count(kind: str, grid: BenchGrid, reports: int, log: Callable[[str], None]) -> int:
    """Instructions per report of the API process, on a `kind` database holding `grid`."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install -y valgrind)")
    totals = [_run(kind, grid, n, log) for n in (BASE, BASE + reports)]
    return (totals[1] - totals[0]) // reports


def _run(kind: str, grid: BenchGrid, n: int, log: Callable[[str], None]) -> int:
    workdir = Path(tempfile.mkdtemp(prefix=f"burnban-instructions-{kind}-"))
    db = database.create_database(kind, workdir)
    try:
        credentials = database.provision(db, grid, lambda _: None)
        out = workdir / "callgrind.out"
        log(f"{kind}: {WARMUP} + {n} reports under valgrind")
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.instructions", credentials.api_key, str(grid.points),
            str(n),
        ]  # fmt: skip
        done = subprocess.run(command, env=db.env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the in-process run failed:\n{done.stderr[-3000:]}")
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no instruction total in {out}")
        return int(found.group(1))
    finally:
        database.drop_database(db)
        shutil.rmtree(workdir, ignore_errors=True)


class _Reports:
    """The `reports` workload's bodies (bench/workloads.py), as ASGI requests."""

    def __init__(self, api_key: str, points: list[list[float]]) -> None:
        self.api_key, self.points = api_key.encode(), points
        self.rng, self.earlier = random.Random(4), list[int]()

    def next(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        if self.earlier and self.rng.random() < NEAR_SHARE:
            _, _, lon, lat = self.points[self.rng.choice(self.earlier)]
        else:
            index = self.rng.randrange(len(self.points))
            self.earlier.append(index)
            lon, lat = self.points[index][0], self.points[index][1]
        body = json.dumps(report_body(lon, lat), ensure_ascii=False).encode()
        headers = [
            (b"host", b"127.0.0.1"),
            (b"x-api-key", self.api_key),
            (b"idempotency-key", os.urandom(16).hex().encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        return headers, body


async def _post(app: Any, reports: _Reports) -> None:
    headers, body = reports.next()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/reports", "raw_path": b"/api/v1/reports",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    received = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the body was read: wait, as for a client that does not disconnect
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body" and status != [201]:
            raise RuntimeError(f"answered {status}: {message['body'][:500]!r}")

    await app(scope, receive, send)


async def _drive(api_key: str, points_path: str, n: int) -> None:
    from app.asgi import app_from_environment

    app = app_from_environment()
    reports = _Reports(api_key, json.loads(Path(points_path).read_text()))

    async def task(left: Iterator[int]) -> None:
        for _ in left:  # shared by the tasks: each takes the next report
            await _post(app, reports)

    async with app.router.lifespan_context(app):
        for count in (WARMUP, n):
            left = iter(range(count))
            await asyncio.gather(*(task(left) for _ in range(TASKS)))


if __name__ == "__main__":
    asyncio.run(_drive(sys.argv[1], sys.argv[2], int(sys.argv[3])))
