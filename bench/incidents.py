"""Bulk-loading incidents with SQL (a million are not posted one by one).

Each incident sits at a representative point of a random village, was opened in the last two
years (so a yearly scorecard covers about half), and has its two assignments: the township
(responsible) and the urban-management bureau (lead). Reports and timelines are not loaded:
the incident list and the scorecard read incidents and assignments.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import numpy as np
import shapely

from bench.database import BenchDatabase
from bench.grid import BenchGrid

STATUSES = np.array(["dispatched", "acknowledged", "on_site", "resolved", "closed", "rejected"])
STATUS_SHARE = [0.08, 0.04, 0.03, 0.05, 0.75, 0.05]
CATEGORIES = np.array(["open_burning", "cured_meat_smoking"])
LEAD = "urban-management"
_BATCH = 50_000
_COLUMNS = (
    "id, case_number, district_code, category, status, version, lon, lat, location, "
    "village_code, township_code, opened_at, updated_at, last_observed_at, due_at, closed_at, "
    "report_count"
)


@dataclass(frozen=True)
class _Villages:
    codes: list[str]
    lon: np.ndarray
    lat: np.ndarray


def _villages(grid: BenchGrid) -> _Villages:
    with grid.geojson.open(encoding="utf-8") as f:
        features = [
            feature
            for feature in json.load(f)["features"]
            if feature["properties"]["level"] == "village"
        ]
    shapes = shapely.from_geojson([json.dumps(feature["geometry"]) for feature in features])
    points = shapely.get_coordinates(shapely.point_on_surface(shapes))
    codes = [feature["properties"]["code"] for feature in features]
    return _Villages(codes, points[:, 0], points[:, 1])


def _rows(grid: BenchGrid, count: int, now: datetime) -> Iterator[list[tuple[object, ...]]]:
    """Batches of (incident row, responsible agency) tuples, deterministic for a grid."""
    villages = _villages(grid)
    rng = np.random.default_rng(count)
    seq_by_year: dict[int, int] = {}
    for start in range(0, count, _BATCH):
        n = min(_BATCH, count - start)
        pick = rng.integers(0, len(villages.codes), n)
        age_s = rng.uniform(0, 2 * 365 * 86_400, n)
        status = rng.choice(STATUSES, n, p=STATUS_SHARE)
        category = rng.choice(CATEGORIES, n, p=[0.9, 0.1])
        handling_s = rng.uniform(600, 3 * 86_400, n)
        batch: list[tuple[object, ...]] = []
        for i in range(n):
            opened = now - timedelta(seconds=float(age_s[i]))
            seq_by_year[opened.year] = seq_by_year.get(opened.year, 0) + 1
            code = villages.codes[pick[i]]
            terminal = status[i] in ("closed", "rejected")
            closed = opened + timedelta(seconds=float(handling_s[i])) if terminal else None
            batch.append(
                (
                    rng.bytes(16).hex(),
                    f"{grid.district}-{opened.year}-{seq_by_year[opened.year]:07d}",
                    grid.district,
                    str(category[i]),
                    str(status[i]),
                    float(villages.lon[pick[i]]),
                    float(villages.lat[pick[i]]),
                    code,
                    code[:-3],
                    opened,
                    closed or opened + timedelta(minutes=30),
                    opened + timedelta(hours=24),
                    closed,
                )
            )
        yield batch


def _sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _load_sqlite(db: BenchDatabase, grid: BenchGrid, count: int, now: datetime) -> None:
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
        for batch in _rows(grid, count, now):
            wkb = shapely.to_wkb(shapely.points([(r[5], r[6]) for r in batch]))
            incidents = []
            assignments = []
            for row, location in zip(batch, wkb, strict=True):
                id_, case, district, category, status, lon, lat, village, township = row[:9]
                opened, updated, due, closed = (_sqlite_time(t) for t in row[9:13])  # type: ignore[arg-type]
                incidents.append(
                    (id_, case, district, category, status, 1, lon, lat, location, village,
                     township, opened, updated, opened, due, closed, 1)
                )  # fmt: skip
                acked = None if status == "dispatched" else updated
                assignments.append((id_, district, township, "responsible", opened, acked))
                assignments.append((id_, district, LEAD, "lead", opened, acked))
            conn.executemany(
                f"INSERT INTO incidents ({_COLUMNS}) VALUES ({','.join('?' * 17)})", incidents
            )
            conn.executemany(
                "INSERT INTO assignments (incident_id, district_code, agency_code, role, "
                "assigned_at, acknowledged_at) VALUES (?, ?, ?, ?, ?, ?)",
                assignments,
            )
        conn.execute("ANALYZE")


async def _load_postgis(db: BenchDatabase, grid: BenchGrid, count: int, now: datetime) -> None:
    conn = await asyncpg.connect(db.url)
    try:
        await conn.execute(
            "CREATE TEMP TABLE bench_incidents (id text, case_number text, district_code text, "
            "category text, status text, lon float8, lat float8, village_code text, "
            "township_code text, opened_at timestamptz, updated_at timestamptz, "
            "due_at timestamptz, closed_at timestamptz)"
        )
        for batch in _rows(grid, count, now):
            await conn.copy_records_to_table("bench_incidents", records=batch)
        await conn.execute(
            f"INSERT INTO incidents ({_COLUMNS}) SELECT id, case_number, district_code, category, "
            "status, 1, lon, lat, ST_SetSRID(ST_MakePoint(lon, lat), 4326), village_code, "
            "township_code, opened_at, updated_at, opened_at, due_at, closed_at, 1 "
            "FROM bench_incidents"
        )
        await conn.execute(
            "INSERT INTO assignments (incident_id, district_code, agency_code, role, "
            "assigned_at, acknowledged_at) "
            "SELECT id, district_code, agency, role, opened_at, "
            "CASE WHEN status = 'dispatched' THEN NULL ELSE updated_at END "
            "FROM bench_incidents, (VALUES ('responsible'), ('lead')) AS r(role), "
            f"LATERAL (SELECT CASE WHEN role = 'lead' THEN '{LEAD}' ELSE township_code END) "
            "AS a(agency)"
        )
        await conn.execute("ANALYZE incidents; ANALYZE assignments")
    finally:
        await conn.close()


def bulk_load(db: BenchDatabase, grid: BenchGrid, count: int) -> None:
    """Store `count` incidents (and their assignments) in the bench database."""
    now = datetime.now(UTC)
    if db.kind == "sqlite":
        _load_sqlite(db, grid, count, now)
    else:
        asyncio.run(_load_postgis(db, grid, count, now))
