"""Servers and delivery workers under test: started as operators start them, watched for
memory, stopped cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.database import BURNBAN, BenchDatabase

ROOT = Path(__file__).resolve().parent.parent


def run_module(
    module: str, *args: str, result: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`python -m module ARGS` in a process of its own, which writes its answer as JSON to
    `result`; that answer. RuntimeError with the end of its stderr when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} exited {done.returncode}: {done.stderr[-500:]}")
    answer: dict[str, Any] = json.loads(result.read_text())
    return answer


READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def command(kind: str, workers: int, port: int) -> list[str]:
    """`burnban serve` for the product; uvicorn with the same settings for the baselines."""
    if kind == "product":
        return [BURNBAN, "serve", "--workers", str(workers), "--port", str(port)]
    return [
        sys.executable, "-m", "uvicorn", "--factory", "bench.baseline_app:create",
        "--app-dir", str(ROOT), "--workers", str(workers), "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


class Server:
    """A running server process tree."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.base_url = f"http://127.0.0.1:{port}"

    def workers(self) -> list[psutil.Process]:
        """The processes serving requests: uvicorn's spawned workers, or the server itself."""
        root = psutil.Process(self.process.pid)
        spawned = []
        for child in root.children(recursive=True):
            try:
                if any("spawn_main" in part for part in child.cmdline()):
                    spawned.append(child)
            except psutil.Error:
                continue
        return spawned or [root]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"the server was not ready in {READY_TIMEOUT_S:.0f}s:\n{self.log.read_text()[-3000:]}"
        )


@contextmanager
def running(kind: str, db: BenchDatabase, workers: int) -> Iterator[Server]:
    """Start the product or the baseline app on `db`, wait for /readyz, stop it afterwards."""
    port = free_port()
    log = db.workdir / f"server-{kind}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(kind, workers, port),
            env=db.env(),
            cwd=db.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log)
    try:
        server.wait_ready()
        yield server
    finally:
        _stop(process)


class Worker:
    """A running `burnban worker` process."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.started_at = 0.0  # time.time() when it said it was delivering

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(self.process.pid)]

    def wait_started(self) -> None:
        """Until the worker prints its banner (after its imports, before its first round)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if b"delivering webhooks" in self.log.read_bytes():
                self.started_at = time.time()
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"burnban worker exited early:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.01)
        raise RuntimeError(f"burnban worker did not start in {READY_TIMEOUT_S:.0f}s")


@contextmanager
def delivering(db: BenchDatabase) -> Iterator[Worker]:
    """`burnban worker` on `db`, started as operators start it; stopped with SIGINT after."""
    log = db.workdir / f"worker-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BURNBAN, "worker"],
            env=db.env() | {"PYTHONUNBUFFERED": "1"},  # the banner reaches the log at once
            cwd=db.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(process, log)
    try:
        worker.wait_started()
        yield worker
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RssSampler:
    """The peak resident memory of each process, sampled in a thread while a load runs; and,
    given the server's port, how many client connections each process holds (the kernel hands
    each new connection to whichever worker accepts first, and a kept-alive connection stays
    with its worker: a worker holding more of them answers each of its clients more slowly).

    Connections are counted once a second (`clients_interval`): psutil reads the whole of
    /proc/net/tcp for each count, and at every 0.2 s that took ~12 % of a CPU from the server
    under test (py-spy, a SQLite `reports` run).
    """

    def __init__(
        self,
        processes: Callable[[], list[psutil.Process]],
        interval: float = 0.2,
        port: int | None = None,
        clients_interval: float = 1.0,
    ) -> None:
        self.processes = processes
        self.interval = interval
        self.port = port
        self.clients_interval = clients_interval
        self.peak: dict[int, int] = {}
        self.clients: dict[int, int] = {}  # by pid, the most seen at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        workers = self.processes()
        count_clients_at = time.monotonic()
        while True:
            counting = self.port is not None and time.monotonic() >= count_clients_at
            if counting:
                count_clients_at = time.monotonic() + self.clients_interval
            for worker in workers:
                try:
                    rss = worker.memory_info().rss
                    clients = self._clients(worker) if counting else 0
                except psutil.Error:
                    continue
                self.peak[worker.pid] = max(rss, self.peak.get(worker.pid, 0))
                self.clients[worker.pid] = max(clients, self.clients.get(worker.pid, 0))
            if self._stop.wait(self.interval):
                return

    def _clients(self, worker: psutil.Process) -> int:
        return sum(
            1
            for c in worker.net_connections("tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port
        )

    @property
    def peak_mb(self) -> float:
        """The largest peak among the processes, in MB."""
        return max(self.peak.values(), default=0) / 1e6

    @property
    def clients_split(self) -> list[int]:
        """Client connections by worker, most first (empty without a port)."""
        return sorted((n for n in self.clients.values() if n), reverse=True)


class CpuMeter:
    """CPU time spent while a load runs: by the server's worker processes, and by PostgreSQL's
    processes on this machine (none for SQLite, whose work is the workers'). Divided by the
    requests answered, it is what a request costs, load generator and kernel aside."""

    def __init__(self, workers: Callable[[], list[psutil.Process]], kind: str) -> None:
        self.workers = workers
        self.kind = kind
        self.seconds: dict[str, float] = {}  # "api", and "database" on PostGIS

    def __enter__(self) -> CpuMeter:
        self._before = self._sample()
        return self

    def __exit__(self, *_: object) -> None:
        after = self._sample()
        self.seconds = {who: _spent(self._before[who], after[who]) for who in after}

    def per_request_ms(self, requests: float) -> dict[str, float]:
        return {who: round(s / requests * 1000, 3) for who, s in self.seconds.items()}

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {"api": _cpu_seconds(self.workers())}
        if self.kind == "postgis":
            names = psutil.process_iter(["name"])
            sample["database"] = _cpu_seconds([p for p in names if p.info["name"] == "postgres"])
        return sample


def _cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two samples; a process born between them counts from its birth (one
    that ended between them is lost: pools keep their connections, so backends live on)."""
    return sum(now - before.get(pid, 0.0) for pid, now in after.items())
