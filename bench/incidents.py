"""Bulk-loading incidents with SQL (a million are not posted one by one).

The rows are what the product itself would have written after two years of use, so that the
incident list and the scorecard read them as real:

- each incident sits at a representative point of a random village and was opened in the last
  two years, in a category of the database (90 % `open_burning`);
- it went through the case cycle as far as the time since it opened allows: acknowledged,
  on site, resolved (with an outcome, 6 % with a warning or a fine), verified and closed; 5 %
  are rejected, 5 % of the closed were sent back once (rework), and a few stay stuck at a step
  forever (they are the old overdue ones). Step times are log-normal around 8 min, 35 min,
  45 min and 3 h, so some miss their limits. `status`, the step times, `due_at` (the limit of
  the next step, as the actions set it) and `resolve_due_at` agree with each other;
- it has its assignments, the township (responsible, acknowledged when the incident is) and
  the urban-management bureau (lead), and one to three reports (the first opened it, the
  others merged into it within six hours while it was open) by the village's grid worker;
- case numbers continue each year's counter in `case_counters`, so reports posted afterwards
  open incidents with new numbers.

Timelines (`incident_events`) and outbox events are not loaded: no list or scorecard reads
them, and the past needs no webhooks.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import numpy as np
import shapely

from bench.database import BenchDatabase
from bench.grid import BenchGrid

LEAD = "urban-management"
CASE_YEAR_OFFSET_US = 8 * 3600 * 1_000_000  # case numbers count China's (UTC+8) years
SPAN_S = 2 * 365 * 86_400
MAIN_CATEGORY, MAIN_SHARE = "open_burning", 0.9
MATERIALS = ("straw", "garbage", "leaves", "other")
US = 1_000_000
MINUTE = 60 * US
# How far an incident will ever get: 0 dispatched … 4 closed; REJECT_* are rejected from
# dispatched or from acknowledged.
LEVELS = ("dispatched", "acknowledged", "on_site", "resolved", "closed")
REJECT_DISPATCHED, REJECT_ACKNOWLEDGED = 5, 6
FATE_SHARE = {0: 0.003, 1: 0.002, 2: 0.003, 3: 0.01, 4: 0.932, 5: 0.025, 6: 0.025}
# Median and spread (log-normal sigma) of each step, from the step before.
STEP_MEDIAN_MIN = {"acknowledge": 8, "arrive": 35, "resolve": 45, "verify": 180}
STEP_SIGMA = 0.8
REWORK_SHARE = 0.05
OUTCOMES = ("extinguished", "stopped", "no_fire_found", "penalized")
OUTCOME_SHARE = (0.6, 0.24, 0.1, 0.06)
FINES_YUAN = (200.0, 500.0, 1000.0, 2000.0)
LEGAL_BASIS = "《中华人民共和国大气污染防治法》第一百一十九条"
REPORTS_PER_INCIDENT = (1, 2, 3)
REPORTS_SHARE = (0.85, 0.1, 0.05)
MERGE_WINDOW_US = 6 * 60 * MINUTE
_BATCH = 50_000

_INCIDENT_COLUMNS = (
    "id", "case_number", "district_code", "category", "status", "version", "lon", "lat",
    "village_code", "township_code", "opened_at", "updated_at", "last_observed_at", "due_at",
    "resolve_due_at", "closed_at", "report_count", "acknowledged_at", "arrived_at",
    "resolved_at", "verified_at", "rework_count", "outcome", "penalty_kind",
    "penalty_amount_yuan", "legal_basis",
)  # fmt: skip
_REPORT_COLUMNS = (
    "id", "district_code", "category", "material", "lon", "lat", "submitted_lon",
    "submitted_lat", "submitted_crs", "accuracy_m", "observed_at", "received_at", "description",
    "reporter_kind", "reporter_id", "reporter_name", "reporter_cell_code", "village_code",
    "township_code", "incident_id", "opened_incident",
)  # fmt: skip
_ASSIGNMENT_COLUMNS = (
    "incident_id", "district_code", "agency_code", "role", "assigned_at", "acknowledged_at",
)  # fmt: skip
_TIMES = {
    "opened_at", "updated_at", "last_observed_at", "due_at", "resolve_due_at", "closed_at",
    "acknowledged_at", "arrived_at", "resolved_at", "verified_at", "observed_at", "received_at",
    "assigned_at",
}  # fmt: skip
MISSING = np.iinfo(np.int64).min  # a NULL time


@dataclass(frozen=True)
class _Villages:
    codes: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


@dataclass(frozen=True)
class _Category:
    code: str
    acknowledge_us: int
    arrive_us: int
    resolve_us: int


@dataclass
class _Batch:
    """Column arrays of one batch: incidents, their reports and their assignments."""

    incidents: dict[str, np.ndarray]
    reports: dict[str, np.ndarray]
    assignments: dict[str, np.ndarray]


def _villages(grid: BenchGrid) -> _Villages:
    with grid.geojson.open(encoding="utf-8") as f:
        features = [
            feature
            for feature in json.load(f)["features"]
            if feature["properties"]["level"] == "village"
        ]
    shapes = shapely.from_geojson([json.dumps(feature["geometry"]) for feature in features])
    points = shapely.get_coordinates(shapely.point_on_surface(shapes))
    codes = np.array([feature["properties"]["code"] for feature in features])
    return _Villages(codes, points[:, 0], points[:, 1])


def _hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.bytes(16 * n).hex()
    return np.array([raw[i : i + 32] for i in range(0, 32 * n, 32)])


def _steps(rng: np.random.Generator, n: int, step: str) -> np.ndarray:
    """Durations of one step in µs (log-normal)."""
    median = STEP_MEDIAN_MIN[step] * MINUTE
    return (median * rng.lognormal(0.0, STEP_SIGMA, n)).astype(np.int64)


def _when(reached: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.where(reached, at, MISSING)


def _or_null(present: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(len(values), None, dtype=object)
    out[present] = values[present]
    return out


def _batch(
    rng: np.random.Generator,
    villages: _Villages,
    categories: list[_Category],
    district: str,
    n: int,
    now_us: int,
    case_seq: dict[int, int],
) -> _Batch:
    """n incidents with their lifecycle, reports and assignments; `case_seq` is advanced."""
    pick = rng.integers(0, len(villages.codes), n)
    village = villages.codes[pick]
    township = np.array([code[:-3] for code in village])
    lon, lat = villages.lon[pick], villages.lat[pick]
    opened = now_us - (rng.uniform(0, SPAN_S, n) * US).astype(np.int64)

    main = [i for i, c in enumerate(categories) if c.code == MAIN_CATEGORY]
    shares = np.full(len(categories), (1 - MAIN_SHARE) / max(1, len(categories) - len(main)))
    shares[main] = MAIN_SHARE
    which = rng.choice(len(categories), n, p=shares / shares.sum())
    category = np.array([c.code for c in categories])[which]
    limit_ack, limit_arrive, limit_resolve = (
        np.array([getattr(c, name) for c in categories], dtype=np.int64)[which]
        for name in ("acknowledge_us", "arrive_us", "resolve_us")
    )

    fate = rng.choice(list(FATE_SHARE), n, p=list(FATE_SHARE.values()))
    rejected = fate >= REJECT_DISPATCHED
    rework = (fate == 4) & (rng.random(n) < REWORK_SHARE)
    t_ack = opened + _steps(rng, n, "acknowledge")
    t_arrive = t_ack + _steps(rng, n, "arrive")
    # The latest resolve: after a failed verification the officers went back and resolved again.
    t_resolve = t_arrive + _steps(rng, n, "resolve")
    t_resolve += np.where(rework, _steps(rng, n, "verify") + _steps(rng, n, "resolve"), 0)
    t_close = t_resolve + _steps(rng, n, "verify")
    t_reject = np.where(fate == REJECT_DISPATCHED, t_ack, t_ack + _steps(rng, n, "arrive") // 2)

    # How far each got by now: the last step done, capped by its fate.
    done = np.stack([t_ack, t_arrive, t_resolve, t_close], axis=1) <= now_us
    level = np.minimum(done.sum(axis=1), np.where(rejected, fate - REJECT_DISPATCHED, fate))
    is_rejected = rejected & (t_reject <= now_us)
    rework &= level == 4
    status = np.where(is_rejected, "rejected", np.array(LEVELS)[level])

    resolve_due = opened + limit_resolve
    due = np.select(
        [level == 0, level == 1], [opened + limit_ack, opened + limit_arrive], resolve_due
    )
    acknowledged = _when(level >= 1, t_ack)
    resolved = _when(level >= 3, t_resolve)
    closed = np.where(is_rejected, t_reject, _when(level == 4, t_close))
    last_step = np.select(
        [is_rejected, level == 4, level == 3, level == 2, level == 1],
        [t_reject, t_close, t_resolve, t_arrive, t_ack],
        opened,
    )

    outcome = _or_null(level >= 3, rng.choice(OUTCOMES, n, p=OUTCOME_SHARE))
    penalized = outcome == "penalized"
    fine = penalized & (rng.random(n) < 0.4)
    penalty_kind = _or_null(penalized, np.where(fine, "fine", "warning"))
    amount = np.where(fine, rng.choice(FINES_YUAN, n), np.nan)

    # Reports: the first opened the incident; the others merged while it was open and recent.
    count = rng.choice(REPORTS_PER_INCIDENT, n, p=REPORTS_SHARE)
    owner = np.repeat(np.arange(n), count)
    first = np.ones(len(owner), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    open_until = np.minimum(np.where(closed == MISSING, now_us, closed), opened + MERGE_WINDOW_US)
    later = opened[owner] + (rng.random(len(owner)) * (open_until[owner] - opened[owner])).astype(
        np.int64
    )
    received = np.where(first, opened[owner], later)
    # Observed before it was sent: up to ten minutes for the first, two for the others.
    lag = rng.uniform(2, 120, len(owner)) * np.where(first, 5, 1)
    observed = received - (lag * US).astype(np.int64)
    last_observed = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_observed, owner, observed)
    last_received = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_received, owner, received)

    local = (opened + CASE_YEAR_OFFSET_US).astype("datetime64[us]")
    years = local.astype("datetime64[Y]").astype(np.int64) + 1970
    seq = np.zeros(n, dtype=np.int64)
    for year in np.unique(years):
        mine = years == year
        start = case_seq.get(int(year), 0)
        seq[mine] = start + np.arange(1, int(mine.sum()) + 1)
        case_seq[int(year)] = start + int(mine.sum())
    ids = _hex_ids(rng, n)
    incidents = {
        "id": ids,
        "case_number": np.array(
            [f"{district}-{y}-{s:06d}" for y, s in zip(years, seq, strict=True)]
        ),
        "district_code": np.full(n, district),
        "category": category,
        "status": status,
        "version": 1 + level + is_rejected + (count - 1) + 2 * rework,
        "lon": lon,
        "lat": lat,
        "village_code": village,
        "township_code": township,
        "opened_at": opened,
        "updated_at": np.maximum(last_step, last_received),
        "last_observed_at": last_observed,
        "due_at": due,
        "resolve_due_at": resolve_due,
        "closed_at": closed,
        "report_count": count,
        "acknowledged_at": acknowledged,
        "arrived_at": _when(level >= 2, t_arrive),
        "resolved_at": resolved,
        "verified_at": _when(level == 4, t_close),
        "rework_count": rework.astype(np.int64),
        "outcome": outcome,
        "penalty_kind": penalty_kind,
        "penalty_amount_yuan": amount,
        "legal_basis": _or_null(penalized, np.full(n, LEGAL_BASIS)),
    }
    m = len(owner)
    material = _or_null(
        category[owner] == MAIN_CATEGORY, rng.choice(MATERIALS, m, p=[0.7, 0.15, 0.1, 0.05])
    )
    reports = {
        "id": _hex_ids(rng, m),
        "district_code": np.full(m, district),
        "category": category[owner],
        "material": material,
        "lon": lon[owner],
        "lat": lat[owner],
        "submitted_lon": lon[owner],
        "submitted_lat": lat[owner],
        "submitted_crs": np.full(m, "wgs84"),
        "accuracy_m": np.round(rng.uniform(5, 30, m), 1),
        "observed_at": observed,
        "received_at": received,
        "description": np.full(m, "田间焚烧秸秆，烟较大"),
        "reporter_kind": np.full(m, "user"),
        "reporter_id": np.array([f"bench{code}" for code in village[owner]]),
        "reporter_name": np.full(m, "网格员"),
        "reporter_cell_code": village[owner],
        "village_code": village[owner],
        "township_code": township[owner],
        "incident_id": ids[owner],
        "opened_incident": first,
    }
    assignments = {
        "incident_id": np.concatenate([ids, ids]),
        "district_code": np.full(2 * n, district),
        "agency_code": np.concatenate([township, np.full(n, LEAD)]),
        "role": np.concatenate([np.full(n, "responsible"), np.full(n, "lead")]),
        "assigned_at": np.concatenate([opened, opened]),
        "acknowledged_at": np.concatenate([acknowledged, np.full(n, MISSING)]),
    }
    return _Batch(incidents, reports, assignments)


def _batches(
    grid: BenchGrid, categories: list[_Category], count: int, now: datetime, seq: dict[int, int]
) -> Iterator[_Batch]:
    """The batches for a grid and count (the same ones every time, but for `now`)."""
    villages = _villages(grid)
    rng = np.random.default_rng(count)
    now_us = int(now.timestamp() * US)
    for start in range(0, count, _BATCH):
        n = min(_BATCH, count - start)
        yield _batch(rng, villages, categories, grid.district, n, now_us, seq)


def _sqlite_times(values: np.ndarray) -> list[str | None]:
    """µs since the epoch as SQLAlchemy stores UTC times in SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    text = np.char.replace(
        np.datetime_as_string(values.astype("datetime64[us]"), unit="us"), "T", " "
    )
    out = text.astype(object)
    out[values == MISSING] = None
    result: list[str | None] = out.tolist()
    return result


Times = Callable[[np.ndarray], list[Any]]  # µs since the epoch as the database is given them


def _column(name: str, values: np.ndarray, times: Times) -> list[Any]:
    """One column as Python values (NULL for missing times and NaN amounts)."""
    if name in _TIMES:
        return times(values)
    if values.dtype.kind == "f":
        out = values.astype(object)
        out[np.isnan(values)] = None
        return list(out.tolist())
    return list(values.tolist())


def _records(columns: dict[str, np.ndarray], names: tuple[str, ...], times: Times) -> list[Any]:
    """Row tuples of the named columns."""
    return list(zip(*(_column(name, columns[name], times) for name in names), strict=True))


def _pg_times(values: np.ndarray) -> list[int | None]:
    out = values.astype(object)
    out[values == MISSING] = None
    result: list[int | None] = out.tolist()
    return result


def _sqlite_categories(conn: sqlite3.Connection) -> list[_Category]:
    rows = conn.execute(
        "SELECT code, acknowledge_minutes, arrive_minutes, resolve_minutes FROM categories "
        "ORDER BY code"
    ).fetchall()
    return [_Category(c, a * MINUTE, b * MINUTE, r * MINUTE) for c, a, b, r in rows]


def _load_sqlite(db: BenchDatabase, grid: BenchGrid, count: int, now: datetime) -> None:
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
        seq = dict(
            conn.execute(
                "SELECT year, last_seq FROM case_counters WHERE district_code = ?",
                (grid.district,),
            ).fetchall()
        )
        categories = _sqlite_categories(conn)
        for batch in _batches(grid, categories, count, now, seq):
            incidents = batch.incidents
            points = shapely.to_wkb(shapely.points(incidents["lon"], incidents["lat"]))
            rows = _records(incidents, _INCIDENT_COLUMNS, _sqlite_times)
            conn.executemany(
                f"INSERT INTO incidents ({', '.join(_INCIDENT_COLUMNS)}, location) "
                f"VALUES ({', '.join('?' * (len(_INCIDENT_COLUMNS) + 1))})",
                [(*row, point) for row, point in zip(rows, points, strict=True)],
            )
            reports = batch.reports
            points = shapely.to_wkb(shapely.points(reports["lon"], reports["lat"]))
            rows = _records(reports, _REPORT_COLUMNS, _sqlite_times)
            conn.executemany(
                f"INSERT INTO reports ({', '.join(_REPORT_COLUMNS)}, location) "
                f"VALUES ({', '.join('?' * (len(_REPORT_COLUMNS) + 1))})",
                [(*row, point) for row, point in zip(rows, points, strict=True)],
            )
            conn.executemany(
                f"INSERT INTO assignments ({', '.join(_ASSIGNMENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_ASSIGNMENT_COLUMNS))})",
                _records(batch.assignments, _ASSIGNMENT_COLUMNS, _sqlite_times),
            )
        conn.executemany(
            "INSERT INTO case_counters (district_code, year, last_seq) VALUES (?, ?, ?) "
            "ON CONFLICT (district_code, year) DO UPDATE SET last_seq = excluded.last_seq",
            [(grid.district, year, last) for year, last in seq.items()],
        )
        conn.execute("ANALYZE")


def _pg_staging(table: str, names: tuple[str, ...], types: dict[str, str]) -> str:
    columns = ", ".join(f"{n} {'bigint' if n in _TIMES else types.get(n, 'text')}" for n in names)
    return f"CREATE TEMP TABLE {table} ({columns})"


def _pg_select(names: tuple[str, ...]) -> str:
    """The staged columns, µs turned back into timestamptz."""
    return ", ".join(
        f"timestamptz 'epoch' + {n} * interval '1 microsecond'" if n in _TIMES else n for n in names
    )


_PG_TYPES = {
    "version": "integer", "lon": "float8", "lat": "float8", "report_count": "integer",
    "rework_count": "integer", "penalty_amount_yuan": "float8",
    "submitted_lon": "float8", "submitted_lat": "float8", "accuracy_m": "float8",
    "opened_incident": "boolean",
}  # fmt: skip


async def _load_postgis(db: BenchDatabase, grid: BenchGrid, count: int, now: datetime) -> None:
    conn = await asyncpg.connect(db.url)
    try:
        seq = {
            int(r["year"]): int(r["last_seq"])
            for r in await conn.fetch(
                "SELECT year, last_seq FROM case_counters WHERE district_code = $1", grid.district
            )
        }
        categories = [
            _Category(r[0], r[1] * MINUTE, r[2] * MINUTE, r[3] * MINUTE)
            for r in await conn.fetch(
                "SELECT code, acknowledge_minutes, arrive_minutes, resolve_minutes "
                "FROM categories ORDER BY code"
            )
        ]
        await conn.execute(_pg_staging("bench_incidents", _INCIDENT_COLUMNS, _PG_TYPES))
        await conn.execute(_pg_staging("bench_reports", _REPORT_COLUMNS, _PG_TYPES))
        for batch in _batches(grid, categories, count, now, seq):
            await conn.copy_records_to_table(
                "bench_incidents",
                records=_records(batch.incidents, _INCIDENT_COLUMNS, _pg_times),
                columns=list(_INCIDENT_COLUMNS),
            )
            await conn.copy_records_to_table(
                "bench_reports",
                records=_records(batch.reports, _REPORT_COLUMNS, _pg_times),
                columns=list(_REPORT_COLUMNS),
            )
        point = "ST_SetSRID(ST_MakePoint(lon, lat), 4326)"
        async with conn.transaction():
            await conn.execute(
                f"INSERT INTO incidents ({', '.join(_INCIDENT_COLUMNS)}, location) "
                f"SELECT {_pg_select(_INCIDENT_COLUMNS)}, {point} FROM bench_incidents"
            )
            await conn.execute(
                f"INSERT INTO assignments ({', '.join(_ASSIGNMENT_COLUMNS)}) "
                "SELECT id, district_code, agency, role, "
                "timestamptz 'epoch' + opened_at * interval '1 microsecond', "
                "CASE WHEN role = 'responsible' "
                "THEN timestamptz 'epoch' + acknowledged_at * interval '1 microsecond' END "
                "FROM bench_incidents, (VALUES ('responsible'), ('lead')) AS r(role), "
                f"LATERAL (SELECT CASE WHEN role = 'lead' THEN '{LEAD}' ELSE township_code END) "
                "AS a(agency)"
            )
            await conn.execute(
                f"INSERT INTO reports ({', '.join(_REPORT_COLUMNS)}, location) "
                f"SELECT {_pg_select(_REPORT_COLUMNS)}, {point} FROM bench_reports"
            )
            await conn.executemany(
                "INSERT INTO case_counters (district_code, year, last_seq) VALUES ($1, $2, $3) "
                "ON CONFLICT (district_code, year) DO UPDATE SET last_seq = excluded.last_seq",
                [(grid.district, year, last) for year, last in seq.items()],
            )
        # What autovacuum does after a bulk load (this machine's PostgreSQL has it off): the
        # visibility map lets the scorecard's index-only scans skip the table.
        await conn.execute("VACUUM (ANALYZE) incidents, assignments, reports")
    finally:
        await conn.close()


def bulk_load(db: BenchDatabase, grid: BenchGrid, count: int) -> None:
    """Store `count` incidents with their reports and assignments in the bench database."""
    now = datetime.now(UTC)
    if db.kind == "sqlite":
        _load_sqlite(db, grid, count, now)
    else:
        asyncio.run(_load_postgis(db, grid, count, now))
