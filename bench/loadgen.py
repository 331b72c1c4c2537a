"""The load generator: a closed loop of N keep-alive HTTP/1.1 connections, in its own process.

Run as `python -m bench.loadgen SPEC.json RESULT.json`. Each connection sends a request, waits
for the whole answer, and sends the next, so concurrency is fixed. Latencies are those of the
requests that complete inside the measured window (after the warm-up).

Why not httpx: an httpx client tops out at a few thousand requests a second per core, less than
the bare baseline on this machine, so it would measure itself. This one is asyncio's protocol
layer on uvloop with httptools' parser (both already installed with uvicorn[standard]), and
costs roughly 20 µs of CPU per request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools
import numpy as np

from bench.server import run_module
from bench.workloads import RequestFactory, Target, request_factory

_SAMPLE_ERRORS = 3


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    error_samples: list[str] = field(default_factory=list)


class _Run:
    """Shared state of one load run: the request source and what was measured."""

    def __init__(self, factory: RequestFactory, max_requests: int | None = None) -> None:
        self.factory = factory
        self.max_requests = max_requests
        self.sent = 0
        self.measuring = False
        self.stopping = False
        self.enough = asyncio.Event()  # max_requests were sent
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.error_samples: list[str] = []
        self.open = 0
        self.all_closed = asyncio.Event()

    def record(self, started: float, status: int, body: bytes) -> None:
        if not self.measuring:
            return
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] += 1
        if status >= 400:
            self.error(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < _SAMPLE_ERRORS:
            self.error_samples.append(what)


class _Connection(asyncio.Protocol):
    """One client: request, whole answer, next request, on one kept-alive connection."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.run.open += 1
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.run.stopping or self.run.enough.is_set():
            self.transport.close()
            return
        self.run.sent += 1
        if self.run.sent == self.run.max_requests:
            self.run.enough.set()
        request = self.run.factory()
        self.body.clear()
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.run.error(f"unparsable answer: {exc}")
            assert self.transport is not None
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.run.record(self.started, self.parser.get_status_code(), bytes(self.body))
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.open -= 1
        if not (self.run.stopping or self.run.enough.is_set()):
            self.run.error(f"connection lost: {exc!r}")
        if self.run.open == 0:
            self.run.all_closed.set()


async def run_load(
    target: Target,
    workload: str,
    concurrency: int,
    warmup: float,
    duration: float,
    max_requests: int | None = None,
) -> LoadResult:
    """Drive `workload` at `target` with `concurrency` connections; measure for `duration` s,
    or until `max_requests` have been sent (warm-up included)."""
    run = _Run(request_factory(workload, target), max_requests)
    loop = asyncio.get_running_loop()
    for _ in range(concurrency):
        await loop.create_connection(lambda: _Connection(run), target.host, target.port)
    await asyncio.sleep(warmup)
    run.measuring = True
    started = time.perf_counter()
    try:
        await asyncio.wait_for(run.enough.wait(), duration)
    except TimeoutError:
        pass
    if run.enough.is_set():  # the answers to the last requests sent count too
        await _all_closed(run)
    run.measuring = False
    elapsed = time.perf_counter() - started
    run.stopping = True
    await _all_closed(run)
    return _summary(run, elapsed)


async def _all_closed(run: _Run) -> None:
    if run.all_closed.is_set():
        return
    try:
        await asyncio.wait_for(run.all_closed.wait(), timeout=30)
    except TimeoutError:
        run.error("connections still busy 30 s after the end of the run")


def _summary(run: _Run, elapsed: float) -> LoadResult:
    ms = np.array(run.latencies or [float("nan")]) * 1000.0
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    return LoadResult(
        requests=len(run.latencies),
        seconds=round(elapsed, 3),
        throughput=len(run.latencies) / elapsed,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(np.max(ms)),
        errors=run.errors,
        statuses={str(k): v for k, v in sorted(run.statuses.items())},
        error_samples=run.error_samples,
    )


def launch(
    workdir: Path,
    tag: str,
    target: Target,
    workload: str,
    concurrency: int,
    warmup: float,
    duration: float,
    max_requests: int | None = None,
) -> dict[str, Any]:
    """Run the load generator in its own process (so that it never measures itself); its
    LoadResult as a dict. RuntimeError when it fails."""
    spec = {
        "target": asdict(target),
        "workload": workload,
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "max_requests": max_requests,
    }
    spec_path, result_path = workdir / f"spec-{tag}.json", workdir / f"result-{tag}.json"
    spec_path.write_text(json.dumps(spec))
    return run_module("bench.loadgen", str(spec_path), str(result_path), result=result_path)


def main(argv: list[str]) -> None:
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    import uvloop

    result = uvloop.run(
        run_load(
            Target(**spec["target"]),
            spec["workload"],
            spec["concurrency"],
            spec["warmup"],
            spec["duration"],
            spec.get("max_requests"),
        )
    )
    Path(argv[1]).write_text(json.dumps(asdict(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
