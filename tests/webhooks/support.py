"""Helpers for the delivery tests: subscribing, making events, running the worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from app.webhooks.worker import DispatchCounts, WorkerOptions, dispatch_once
from tests.conftest import Harness
from tests.factories import at, load_grid, login_headers, make_api_key, report_body

ALL_EVENTS = ["incident.created", "incident.updated", "report.created"]
# No jitter in tests: the clock moves by exactly the documented delays.
OPTIONS = WorkerOptions(allow_private=True, jitter=lambda: 1.0)


async def subscribe(
    h: Harness, url: str, events: list[str] | None = None, cell: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A new key's subscription (with its secret) and the key's headers."""
    h.settings.webhook_allow_private = True
    key = await make_api_key(h, ["webhooks:manage"])
    body: dict[str, Any] = {"url": url, "events": events or ALL_EVENTS}
    if cell is not None:
        body["cell"] = cell
    answer = await h.client.post("/api/v1/webhooks", json=body, headers=key)
    assert answer.status_code == 201, answer.text
    return answer.json(), key


class Reporter:
    """Files reports through the API as a grid worker."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.headers: dict[str, str] | None = None

    async def ready(self) -> dict[str, str]:
        """Load the test grid and log a grid worker in, once."""
        if self.headers is None:
            await load_grid(self.h)
            self.headers = await login_headers(self.h, "grid_worker")
        return self.headers

    async def report(self, lon: float = 120.02, lat: float = 30.02) -> dict[str, Any]:
        headers = await self.ready()
        answer = await self.h.client.post(
            "/api/v1/reports", json=report_body(location=at(lon, lat)), headers=headers
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


async def drain(
    h: Harness, http: httpx.AsyncClient, options: WorkerOptions = OPTIONS, rounds: int = 20
) -> DispatchCounts:
    """Run the worker until a round finds nothing to do; the summed counts."""
    total = DispatchCounts()
    for _ in range(rounds):
        counts = await dispatch_once(h.db, h.clock, http, options)
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(counts, name))
        if not counts.busy:
            return total
    raise AssertionError("the worker never went idle")


async def deliveries(h: Harness, hook: dict[str, Any], key: dict[str, str]) -> list[dict[str, Any]]:
    answer = await h.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=key)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def advance(h: Harness, **delta: float) -> None:
    h.clock.advance(timedelta(**delta))
