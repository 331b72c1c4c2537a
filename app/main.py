"""The application factory: create_app(settings) wires everything; nothing happens on import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app import dbfaults, docs, openapi, problems, readiness
from app.agencies.router import router as agencies_router
from app.auth.router import router as auth_router
from app.categories.router import router as categories_router
from app.clock import Clock, SystemClock
from app.config import Settings
from app.crsout import AnswerInCrs
from app.db import Database
from app.grid.router import router as grid_router
from app.incidents.router import router as incidents_router
from app.labels.router import router as labels_router
from app.logging import configure_logging
from app.media.router import router as media_router
from app.middleware import RequestContext, RequestMetrics, route_templates
from app.migrate import head_revision
from app.open311.router import router as open311_router
from app.reports.router import router as reports_router
from app.retention import service as retention
from app.spatial.store import store_for
from app.stats.router import router as stats_router
from app.textguard import RefuseNul
from app.webhooks import worker as webhook_worker
from app.webhooks.router import router as webhooks_router
from app.webhooks.sealing import SecretBox

API_PREFIX = "/api/v1"
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings, *, database: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the service. Tests pass their own database (one rolled-back connection) and clock."""
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        db = database or Database.for_requests(settings)
        app.state.db = db
        app.state.store = store_for(db.dialect)
        delivering = _start_worker(settings, db, app.state.clock) if owned else None
        try:
            yield
        finally:
            if delivering is not None:
                await _stop_worker(*delivering)
            if owned:
                await db.dispose()

    app = FastAPI(
        title="burnban",
        version="0.1.0",
        summary="Grid-based burning-ban supervision: reports, incidents, routing, scorecards.",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
        docs_url=None,  # app/docs.py serves /docs from vendored assets; ReDoc needs a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    if database is not None:  # usable without running the lifespan (tests' ASGI transport)
        app.state.db = database
        app.state.store = store_for(database.dialect)
    registry = CollectorRegistry()
    # FastAPI tries each router's routes in this order (0.165 keeps included routers whole):
    # the busiest first, as no two routers' paths overlap. A report was matched after 16
    # other routes, 2 % of its instructions.
    api_routers = (
        reports_router,
        incidents_router,
        grid_router,
        media_router,
        stats_router,
        webhooks_router,
        auth_router,
        agencies_router,
        categories_router,
        labels_router,
    )
    templates = route_templates(API_PREFIX, api_routers)
    app.add_middleware(AnswerInCrs)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestContext, metrics=RequestMetrics(registry), templates=templates)
    problems.install(app)

    for router in api_routers:
        app.include_router(router, prefix=API_PREFIX, responses=problems.UNAVAILABLE_RESPONSE)
    operations_router = _operations_router(registry)
    app.include_router(open311_router)
    app.include_router(operations_router)
    included = [(API_PREFIX, router) for router in api_routers]
    openapi.install(app, [*included, ("", open311_router), ("", operations_router)])
    docs.install(app)
    return app


def _start_worker(
    settings: Settings, db: Database, clock: Clock
) -> tuple[list[asyncio.Task[None]], asyncio.Event] | None:
    """On the embedded database, deliver webhooks and purge old rows in this process (what
    `burnban worker` does elsewhere)."""
    if not settings.worker_in_process:
        return None
    stop = asyncio.Event()
    options = webhook_worker.WorkerOptions(
        allow_private=settings.webhook_allow_private, box=SecretBox.of(settings)
    )
    tasks = [
        asyncio.create_task(webhook_worker.run(db, clock, options, stop)),
        asyncio.create_task(retention.run(db, clock, retention.Retention.of(settings), stop)),
    ]
    return tasks, stop


async def _stop_worker(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=20)
    for task in pending:  # a send still in flight: its lease runs out and another sends it
        task.cancel()


def _operations_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(tags=["operations"])
    head = head_revision()

    @router.get("/healthz", operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        operation_id="readyz",
        responses={503: {"description": "The database is unreachable or behind the migrations"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """The database answers and its schema is at the migrations' head; else 503 with the
        check that failed (`failed`) and why."""
        ready = await readiness.check(request.app.state.db, head)
        if ready.failed is None:
            return JSONResponse(ready.body())
        retry = {"Retry-After": str(dbfaults.RETRY_SOON)}
        return JSONResponse(ready.body(), 503, headers=retry)

    @router.get("/metrics", operation_id="metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
