"""The load generator, in its own process: closed loops of keep-alive HTTP/1.1 connections, or
an open loop at a fixed offered rate, with closed loops alongside it.

Run as `python -m bench.loadgen SPEC.json RESULT.json`.

- Closed loop (`rate` None): each of N connections sends a request, waits for the whole answer,
  and sends the next, so concurrency is fixed. Latencies are those of the requests that complete
  inside the measured window (after the warm-up), timed from when each was sent.
- Open loop (`rate` R): request i is due at start + i / R whether or not earlier ones have been
  answered. A due request goes out on the longest-idle connection, or on a new one when none is
  idle (no pipelining; up to MAX_CONNECTIONS), so the server's pace never slows the offered
  rate. Its latency is timed from when it was *due*, not from when it went out, so a stall is
  charged to every request it delayed (no coordinated omission). The requests due inside the
  measured window are the ones measured, and the run waits for all of their answers. How late
  the generator itself sent them (`late_p99_ms`, `late_max_ms`) shows whether it kept its
  schedule; it runs at OPEN_LOOP_NICE when allowed.
- `alongside`: closed loops of other requests (supervisors' scorecards, exports) run at the same
  time as the main load, each measured on its own (`alongside` in the result).

Why not httpx: an httpx client tops out at a few thousand requests a second per core, less than
the bare baseline on this machine, so it would measure itself. This one is asyncio's protocol
layer on uvloop with httptools' parser (both already installed with uvicorn[standard]), and
costs roughly 20 µs of CPU per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools
import numpy as np

from bench.server import run_module
from bench.workloads import RequestFactory, Target, request_factory

_SAMPLE_ERRORS = 3
_KEPT_BYTES = 300  # of each answer's body, for error samples
MAX_CONNECTIONS = 2000  # open loop: the most connections it opens (file descriptors: 20 000)
# Open loop: an idle connection is not reused after this long (uvicorn closes kept-alive
# connections idle for 5 s; reusing one just then would lose the request in flight).
_IDLE_REUSE_S = 3.0
_DRAIN_TIMEOUT_S = 30.0
OPEN_LOOP_NICE = -10  # the generator's scheduling priority in an open loop (see _prioritise)


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
    answer_bytes: float = 0.0  # mean size of an answer's body
    # Open loop only: the offered rate, the most connections open at once, and how late the
    # generator sent the measured requests after they were due.
    offered_rps: float | None = None
    connections: int = 0
    late_p99_ms: float | None = None
    late_max_ms: float | None = None
    nice: int | None = None  # the generator's scheduling priority (OPEN_LOOP_NICE if allowed)
    # Closed loops run alongside the main load, by request kind: their own LoadResults.
    alongside: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Stats:
    """What was measured for one kind of request."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.late: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.error_samples: list[str] = []
        self.bytes = 0

    def record(self, latency: float, status: int, head: bytes, size: int) -> None:
        self.latencies.append(latency)
        self.statuses[status] += 1
        self.bytes += size
        if status >= 400:
            self.error(f"HTTP {status}: {head.decode('utf-8', 'replace')}")

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < _SAMPLE_ERRORS:
            self.error_samples.append(what)


class _Window:
    """The measured window, shared by every loop of a run."""

    def __init__(self) -> None:
        self.measuring = False
        self.stopping = False


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, its answer parsed by httptools."""

    def __init__(self, loop: _Loop) -> None:
        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.measured = False  # the request in flight is one of the measured window's
        self.due = 0.0  # when the request in flight was due (open loop) or sent (closed loop)
        self.idle_since = 0.0
        self.head = bytearray()
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.idle_since = time.perf_counter()
        self.loop.made(self)

    def send(self, request: bytes, due: float, measured: bool) -> None:
        assert self.transport is not None
        self.busy, self.due, self.measured, self.size = True, due, measured, 0
        self.head.clear()
        self.transport.write(request)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.loop.stats.error(f"unparsable answer: {exc}")
            self.close()

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if len(self.head) < _KEPT_BYTES:
            self.head += body[: _KEPT_BYTES - len(self.head)]

    def on_message_complete(self) -> None:
        self.busy = False
        self.idle_since = time.perf_counter()
        self.loop.answered(self, self.parser.get_status_code(), bytes(self.head), self.size)

    def connection_lost(self, exc: Exception | None) -> None:
        self.loop.lost(self, exc)


class _Loop:
    """Connections sending one kind of request, and what they measured."""

    def __init__(self, factory: RequestFactory, window: _Window) -> None:
        self.factory = factory
        self.window = window
        self.stats = _Stats()
        self.connections: set[_Connection] = set()
        self.all_closed = asyncio.Event()
        self.all_closed.set()

    def made(self, connection: _Connection) -> None:
        self.connections.add(connection)
        self.all_closed.clear()

    def answered(self, connection: _Connection, status: int, head: bytes, size: int) -> None:
        raise NotImplementedError

    def lost(self, connection: _Connection, exc: Exception | None) -> None:
        self.connections.discard(connection)
        if not self.expected(connection):
            what = "with a request in flight" if connection.busy else "while idle"
            self.stats.error(f"connection lost {what}: {exc!r}")
        if not self.connections:
            self.all_closed.set()

    def expected(self, connection: _Connection) -> bool:
        """Whether the connection's end is no error."""
        return not connection.busy and self.window.stopping

    async def open(self, target: Target) -> None:
        await asyncio.get_running_loop().create_connection(
            lambda: _Connection(self), target.host, target.port
        )

    async def closed(self) -> None:
        if self.all_closed.is_set():
            return
        try:
            await asyncio.wait_for(self.all_closed.wait(), timeout=_DRAIN_TIMEOUT_S)
        except TimeoutError:
            self.stats.error(f"connections still busy {_DRAIN_TIMEOUT_S:g} s after the run")

    async def measure(self, duration: float) -> None:
        """The measured window, once the warm-up is over."""
        await asyncio.sleep(duration)

    async def finish(self) -> None:
        """After the window: every connection closed, once its answer has come."""
        await self.closed()

    def result(self, elapsed: float) -> LoadResult:
        return _summary(self.stats, elapsed)


class _ClosedLoop(_Loop):
    """N connections, each sending its next request when the last was answered."""

    def __init__(
        self, factory: RequestFactory, window: _Window, max_requests: int | None = None
    ) -> None:
        super().__init__(factory, window)
        self.max_requests = max_requests
        self.sent = 0
        self.enough = asyncio.Event()  # max_requests were sent

    def made(self, connection: _Connection) -> None:
        super().made(connection)
        self._next(connection)

    def _next(self, connection: _Connection) -> None:
        if self.window.stopping or self.enough.is_set():
            connection.close()
            return
        self.sent += 1
        if self.sent == self.max_requests:
            self.enough.set()
        request = self.factory()
        connection.send(request, time.perf_counter(), False)

    def answered(self, connection: _Connection, status: int, head: bytes, size: int) -> None:
        if self.window.measuring:  # answers completed inside the window are measured
            self.stats.record(time.perf_counter() - connection.due, status, head, size)
        self._next(connection)

    def expected(self, connection: _Connection) -> bool:
        return not connection.busy and (self.window.stopping or self.enough.is_set())

    async def measure(self, duration: float) -> None:
        try:
            await asyncio.wait_for(self.enough.wait(), duration)
        except TimeoutError:
            return
        await self.closed()  # max_requests sent: the answers to the last of them count too


class _OpenLoop(_Loop):
    """Requests due at a fixed rate, each sent on an idle connection or a new one."""

    def __init__(
        self, factory: RequestFactory, window: _Window, target: Target, rate: float
    ) -> None:
        super().__init__(factory, window)
        self.target = target
        self.rate = rate
        self.idle: deque[_Connection] = deque()  # the longest idle first: spread over all
        self.waiting: deque[tuple[float, bool]] = deque()  # due, measured: no connection yet
        self.opening = 0
        self.most = 0  # connections open at once
        self.measured_due = 0  # requests due inside the measured window
        self.outstanding = 0  # of those, not answered yet
        self.drained = asyncio.Event()
        self.drained.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.scheduler: asyncio.Task[None] | None = None

    def made(self, connection: _Connection) -> None:
        super().made(connection)
        self.most = max(self.most, len(self.connections))
        self._ready(connection)

    def _ready(self, connection: _Connection) -> None:
        if self.waiting:
            due, measured = self.waiting.popleft()
            self._send(connection, due, measured)
        elif self.window.stopping:
            connection.close()
        else:
            self.idle.append(connection)

    def _send(self, connection: _Connection, due: float, measured: bool) -> None:
        request = self.factory()
        if measured:
            self.stats.late.append(time.perf_counter() - due)
        connection.send(request, due, measured)

    def due(self, due: float) -> None:
        """A request is due now (or was at `due`): send it, or have a connection opened for it."""
        measured = self.window.measuring
        if measured:
            self.measured_due += 1
            self.outstanding += 1
            self.drained.clear()
        while self.idle:
            connection = self.idle.popleft()
            if time.perf_counter() - connection.idle_since < _IDLE_REUSE_S:
                self._send(connection, due, measured)
                return
            connection.close()  # it may be closing at the server's end already
        self.waiting.append((due, measured))
        if self.opening < len(self.waiting) and self._may_open():
            self._open_one()

    def _may_open(self) -> bool:
        return len(self.connections) + self.opening < MAX_CONNECTIONS

    def _open_one(self) -> None:
        self.opening += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self) -> None:
        try:
            await self.open(self.target)
        except OSError as exc:
            self.stats.error(f"could not connect: {exc!r}")
        finally:
            self.opening -= 1

    def answered(self, connection: _Connection, status: int, head: bytes, size: int) -> None:
        if connection.measured:  # requests due inside the window are measured
            self.stats.record(time.perf_counter() - connection.due, status, head, size)
            self._settled()
        self._ready(connection)

    def lost(self, connection: _Connection, exc: Exception | None) -> None:
        if connection in self.idle:
            self.idle.remove(connection)
        super().lost(connection, exc)
        if connection.busy and connection.measured:
            self._settled()

    def _settled(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.drained.set()

    def expected(self, connection: _Connection) -> bool:
        # The server closes connections left idle (the next request opens another); at the
        # end, finish() closes those still busy with a request of the warm-up.
        if not connection.busy:
            return True
        return self.window.stopping and not connection.measured

    def start(self, connections: int, spread: float) -> None:
        """Start the schedule, and open `connections` one after another over `spread` s while
        the requests already flow (opened at once against an idle server, most of them land on
        the worker that happens to accept first)."""
        loop = asyncio.get_running_loop()
        self.scheduler = loop.create_task(self._schedule())
        opener = loop.create_task(self._open_spread(connections, spread))
        self.tasks.add(opener)
        opener.add_done_callback(self.tasks.discard)

    async def _open_spread(self, connections: int, spread: float) -> None:
        for _ in range(connections):
            if self.window.stopping or not self._may_open():
                return
            self._open_one()
            await asyncio.sleep(spread / connections)

    async def _schedule(self) -> None:
        """Make a request due every 1 / rate s until the run stops; late wake-ups catch up."""
        interval, start, i = 1.0 / self.rate, time.perf_counter(), 0
        while not self.window.stopping:
            due = start + i * interval
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            self.due(due)
            i += 1

    async def finish(self) -> None:
        """Wait for every measured request's answer, then close the connections."""
        if self.scheduler is not None:
            await self.scheduler
        try:
            await asyncio.wait_for(self.drained.wait(), timeout=_DRAIN_TIMEOUT_S)
        except TimeoutError:
            self.stats.error(
                f"{self.outstanding} requests unanswered {_DRAIN_TIMEOUT_S:g} s after the run"
            )
            self.stats.errors += self.outstanding - 1
        for connection in list(self.idle):
            connection.close()
        self.idle.clear()
        for connection in list(self.connections):
            connection.close()  # unmeasured requests of the warm-up may still be in flight
        await self.closed()

    def result(self, elapsed: float) -> LoadResult:
        result = _summary(self.stats, elapsed)
        late = np.array(self.stats.late or [float("nan")]) * 1000.0
        result.offered_rps = self.measured_due / elapsed
        result.connections = self.most
        result.late_p99_ms = float(np.percentile(late, 99))
        result.late_max_ms = float(np.max(late))
        return result


async def run_load(
    target: Target,
    workload: str,
    concurrency: int,
    warmup: float,
    duration: float,
    max_requests: int | None = None,
    rate: float | None = None,
    alongside: Sequence[tuple[str, int]] = (),
) -> LoadResult:
    """Drive `workload` at `target`: with `concurrency` connections in a closed loop, or, given
    `rate`, in an open loop of that many requests a second starting from `concurrency` open
    connections; and each (request kind, connections) of `alongside` in a closed loop beside
    it. Measure for `duration` s, or until `max_requests` have been sent (warm-up included)."""
    window = _Window()
    factory = request_factory(workload, target)
    main: _ClosedLoop | _OpenLoop
    if rate is None:
        main = _ClosedLoop(factory, window, max_requests)
    else:
        main = _OpenLoop(factory, window, target, rate)
    beside = {kind: _ClosedLoop(request_factory(kind, target), window) for kind, _ in alongside}
    for kind, connections in alongside:
        for _ in range(connections):
            await beside[kind].open(target)
    if isinstance(main, _OpenLoop):
        main.start(concurrency, warmup / 2)
    else:
        for _ in range(concurrency):
            await main.open(target)
    await asyncio.sleep(warmup)
    window.measuring = True
    started = time.perf_counter()
    await main.measure(duration)
    elapsed = time.perf_counter() - started
    window.measuring = False
    window.stopping = True
    await main.finish()
    for loop in beside.values():
        await loop.finish()
    result = main.result(elapsed)
    result.alongside = {kind: asdict(loop.result(elapsed)) for kind, loop in beside.items()}
    return result


def _summary(stats: _Stats, elapsed: float) -> LoadResult:
    ms = np.array(stats.latencies or [float("nan")]) * 1000.0
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    answered = len(stats.latencies)
    return LoadResult(
        requests=answered,
        seconds=round(elapsed, 3),
        throughput=answered / elapsed,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(np.max(ms)),
        errors=stats.errors,
        statuses={str(k): v for k, v in sorted(stats.statuses.items())},
        error_samples=stats.error_samples,
        answer_bytes=stats.bytes / answered if answered else 0.0,
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
    rate: float | None = None,
    alongside: Sequence[tuple[str, int]] = (),
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
        "rate": rate,
        "alongside": [list(group) for group in alongside],
    }
    spec_path, result_path = workdir / f"spec-{tag}.json", workdir / f"result-{tag}.json"
    spec_path.write_text(json.dumps(spec))
    return run_module("bench.loadgen", str(spec_path), str(result_path), result=result_path)


def main(argv: list[str]) -> None:
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    nice = _prioritise() if spec.get("rate") else None
    import uvloop

    result = uvloop.run(
        run_load(
            Target(**spec["target"]),
            spec["workload"],
            spec["concurrency"],
            spec["warmup"],
            spec["duration"],
            spec.get("max_requests"),
            spec.get("rate"),
            [(kind, int(n)) for kind, n in spec.get("alongside", [])],
        )
    )
    result.nice = nice
    Path(argv[1]).write_text(json.dumps(asdict(result)))


def _prioritise() -> int:
    """An open loop keeps its schedule only if it gets a CPU when a request is due: on CPUs
    the server saturates it ran up to 40 ms late at nice 0, under 10 ms at OPEN_LOOP_NICE. It
    takes ~20 µs a request from the server. Needs the privilege; its nice value either way."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, OPEN_LOOP_NICE)
    except OSError:
        pass
    return os.getpriority(os.PRIO_PROCESS, 0)


if __name__ == "__main__":
    main(sys.argv[1:])
