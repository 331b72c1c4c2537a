"""The application factory: create_app(settings) wires everything; nothing happens on import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from app import problems
from app.agencies.router import router as agencies_router
from app.auth.router import router as auth_router
from app.categories.router import router as categories_router
from app.clock import Clock, SystemClock
from app.config import Settings
from app.db import Database, create_engine
from app.grid.router import router as grid_router
from app.logging import configure_logging
from app.middleware import RequestContext, RequestMetrics
from app.migrate import current_revision, head_revision
from app.spatial.store import store_for

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings, *, database: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the service. Tests pass their own database (one rolled-back connection) and clock."""
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        db = database or Database(create_engine(settings.url, settings))
        app.state.db = db
        app.state.store = store_for(db.dialect)
        try:
            yield
        finally:
            if owned:
                await db.dispose()

    app = FastAPI(
        title="burnban",
        version="0.1.0",
        summary="Grid-based burning-ban supervision: reports, incidents, routing, scorecards.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    if database is not None:  # usable without running the lifespan (tests' ASGI transport)
        app.state.db = database
        app.state.store = store_for(database.dialect)
    registry = CollectorRegistry()
    app.add_middleware(RequestContext, metrics=RequestMetrics(registry))
    problems.install(app)

    api = APIRouter(prefix=API_PREFIX)
    for router in (auth_router, grid_router, agencies_router, categories_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(_operations_router(registry))
    return app


def _operations_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(tags=["operations"])
    head = head_revision()

    @router.get("/healthz", operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz", operation_id="readyz")
    async def readyz(request: Request) -> JSONResponse:
        """The database answers and its schema is at the migrations' head."""
        db: Database = request.app.state.db
        try:
            async with db.read() as session:
                conn = await session.connection()
                await conn.execute(text("SELECT 1"))
                revision = await conn.run_sync(current_revision)
        except Exception:  # noqa: BLE001 - any failure to reach the database means not ready
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        if revision != head:
            body = {
                "status": "unavailable",
                "database": "migrations behind",
                "revision": revision,
                "head": head,
            }
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ok", "revision": revision})

    @router.get("/metrics", operation_id="metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
