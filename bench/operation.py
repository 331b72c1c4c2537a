"""The location operation itself, without HTTP: `python -m bench.operation POINTS N OUT`.

DESIGN.md's locate goal (p99 < 1 ms with 100 000 villages) is about finding the cell of a
point. Over HTTP the figure also carries the request's parsing, authentication and unit of
work; this measures what the service does for it: `grid.service.locate` in a read unit of
work that has begun (a request's authentication begins it), one call at a time, in a process
configured by the BURNBAN_* environment like `burnban serve`.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from app.config import Settings
from app.db import Database, create_engine
from app.grid import service as grid_service
from app.spatial.store import store_for
from bench.loadgen import LoadResult

WARMUP = 200


async def measure(points: list[list[float]], count: int) -> LoadResult:
    settings = Settings()
    db = Database(create_engine(settings.url, settings))
    store = store_for(db.dialect)
    rng = random.Random(5)
    latencies: list[float] = []
    try:
        for i in range(WARMUP + count):
            lon, lat = rng.choice(points)[:2]
            async with db.read() as session:
                await session.connection()  # the unit has begun, as the request's auth did
                started = time.perf_counter()
                await grid_service.locate(session, store, lon, lat)
                if i >= WARMUP:
                    latencies.append(time.perf_counter() - started)
    finally:
        await db.dispose()
    ms = np.array(latencies) * 1000.0
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    seconds = float(ms.sum() / 1000.0)
    return LoadResult(
        requests=count,
        seconds=round(seconds, 3),
        throughput=count / seconds,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(ms.max()),
        errors=0,
        statuses={},
    )


def main(argv: list[str]) -> None:
    points: list[list[float]] = json.loads(Path(argv[0]).read_text())
    result = asyncio.run(measure(points, int(argv[1])))
    Path(argv[2]).write_text(json.dumps(asdict(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
