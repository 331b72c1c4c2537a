"""ASGI middleware: request ids, access logs and request metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping

import structlog
from fastapi import APIRouter
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
log = structlog.get_logger("burnban.access")


class RequestMetrics:
    """Prometheus collectors for one app, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "burnban_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "burnban_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # Each series' child, found once: `labels()` validates and locks on every call.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


def route_templates(prefix: str, routers: Iterable[APIRouter]) -> dict[int, str]:
    """The full path template of every route of `routers` included under `prefix`, by route.

    FastAPI puts the route it matched in the scope, and since 0.13x an included route keeps its
    own path ("/cells/{code}"), not the prefixed one ("/api/v1/cells/{code}").
    """
    return {
        id(route): prefix + route.path
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    }


class RequestContext:
    """Gives every request an id (echoed when the caller sent a sane one), logs and counts it.

    The access log holds the method, the route template and the status, never the query string
    or headers: both can carry keys and personal data.
    """

    def __init__(
        self, app: ASGIApp, metrics: RequestMetrics, templates: Mapping[int, str] | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates or {}
        # Bound as the app starts serving, after it configured logging: a lazy logger binds
        # anew on every call, even when its level is filtered out.
        self.log = log.bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _VALID_REQUEST_ID.match(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = self.templates.get(id(route)) or str(getattr(route, "path", "unmatched"))
            self.metrics.observe(scope["method"], template, status, elapsed)
            self.log.info(
                "request",
                method=scope["method"],
                route=template,
                status=status,
                ms=round(elapsed * 1000, 2),
                request_id=request_id,
            )
