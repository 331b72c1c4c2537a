"""The baselines: the product app plus two bench-only routes, never mounted by the product.

Served as `uvicorn --factory bench.baseline_app:create` with the same worker count, loop, HTTP
parser, middleware and process set-up (app.asgi) as `burnban serve`, so the only difference
from our routes is the work they do:

- `GET /bench/bare`: a constant answer (the floor: HTTP, ASGI, FastAPI routing, middleware);
- `POST /bench/insert`: parse a report-shaped JSON body and INSERT one point in one unit of
  work (the floor for anything that stores a report).

The `bench_points` table is created by the bench (bench/database.py), not by the migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import FastAPI, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import text

from app.asgi import app_from_environment
from app.db import Database


class _Location(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    accuracy_m: float | None = None


class _Report(BaseModel):
    category: str
    material: str | None = None
    location: _Location
    observed_at: AwareDatetime
    description: str = Field(default="", max_length=2000)


_INSERT = {
    "sqlite": text(
        "INSERT INTO bench_points (category, lon, lat, observed_at, description) "
        "VALUES (:category, :lon, :lat, :observed_at, :description)"
    ),
    "postgresql": text(
        "INSERT INTO bench_points (category, geom, observed_at, description) "
        "VALUES (:category, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :observed_at, "
        ":description)"
    ),
}


def create() -> FastAPI:
    """The product app as `burnban serve` builds it (app.asgi), with the two baseline routes."""
    app = app_from_environment()

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bench/insert", status_code=201, include_in_schema=False)
    async def insert(report: _Report, request: Request) -> dict[str, str]:
        db: Database = request.app.state.db
        observed: datetime = report.observed_at
        async with db.write() as session:
            conn = await session.connection()
            await conn.execute(
                _INSERT[db.dialect],
                {
                    "category": report.category,
                    "lon": report.location.lon,
                    "lat": report.location.lat,
                    "observed_at": observed.isoformat() if db.dialect == "sqlite" else observed,
                    "description": report.description,
                },
            )
        return {"status": "stored"}

    return app
