"""Small builders for test data: grids, users, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, text
from sqlmodel import SQLModel, func, select

from app.auth import service as auth_service
from app.auth.models import ApiKey, User
from app.auth.schemas import ApiKeyCreate, UserCreate
from app.grid import service as grid_service
from app.grid.schemas import ImportResult
from app.spatial.store import store_for

if TYPE_CHECKING:
    from tests.conftest import Harness

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

# A district the product has never seen: not 七星区, not Guilin. Townships split it at
# lon 120.05; each township's villages split it at lat 30.05. Borders are exactly shared.
DISTRICT = "330106"
WEST, EAST = "330106001", "330106002"
WEST_SOUTH, WEST_NORTH = "330106001001", "330106001002"
EAST_SOUTH, EAST_NORTH = "330106002001", "330106002002"


def box(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict[str, Any]:
    ring = [
        [min_lon, min_lat],
        [max_lon, min_lat],
        [max_lon, max_lat],
        [min_lon, max_lat],
        [min_lon, min_lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(
    code: str, name: str, level: str, parent: str | None, geometry: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name, "level": level, "parent_code": parent},
        "geometry": geometry,
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def small_grid() -> dict[str, Any]:
    return collection(
        feature(DISTRICT, "西湖测试区", "district", None, box(120.0, 30.0, 120.1, 30.1)),
        feature(WEST, "西镇", "township", DISTRICT, box(120.0, 30.0, 120.05, 30.1)),
        feature(EAST, "东镇", "township", DISTRICT, box(120.05, 30.0, 120.1, 30.1)),
        feature(WEST_SOUTH, "西南村", "village", WEST, box(120.0, 30.0, 120.05, 30.05)),
        feature(WEST_NORTH, "西北村", "village", WEST, box(120.0, 30.05, 120.05, 30.1)),
        feature(EAST_SOUTH, "东南村", "village", EAST, box(120.05, 30.0, 120.1, 30.05)),
        feature(EAST_NORTH, "东北村", "village", EAST, box(120.05, 30.05, 120.1, 30.1)),
    )


async def load_grid(h: Harness, grid: dict[str, Any] | None = None) -> ImportResult:
    async with h.db.write() as session:
        return await grid_service.import_grid(
            session, store_for(h.db.dialect), grid or small_grid(), None, h.clock.now()
        )


async def make_user(
    h: Harness,
    role: str,
    username: str | None = None,
    cell_code: str | None = None,
    agency_code: str | None = None,
) -> User:
    if role in ("grid_worker",) and cell_code is None:
        cell_code = WEST_SOUTH
    if role == "supervisor" and cell_code is None:
        cell_code = DISTRICT
    if role == "officer" and agency_code is None:
        agency_code = "urban-management"
    data = UserCreate(
        username=username or f"{role}-{datetime.now().timestamp():.6f}".replace(".", ""),
        password=PASSWORD,
        name=f"测试{role}",
        role=role,
        cell_code=cell_code,
        agency_code=agency_code,
    )
    async with h.db.write() as session:
        return await auth_service.create_user(session, data, None, h.clock.now())


def bearer(h: Harness, user: User, minutes: int = 60) -> dict[str, str]:
    token = auth_service.issue_token(user, h.settings.secret_key, h.clock.now(), minutes)
    return {"Authorization": f"Bearer {token}"}


async def login_headers(h: Harness, role: str, **binding: str) -> dict[str, str]:
    return bearer(h, await make_user(h, role, **binding))


def later(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def report_body(**overrides: Any) -> dict[str, Any]:
    """A valid report of open burning in 西南村, observed ten minutes before NOW."""
    body: dict[str, Any] = {
        "category": "open_burning",
        "material": "straw",
        "location": {"lon": 120.02, "lat": 30.02, "crs": "wgs84", "accuracy_m": 12},
        "observed_at": (NOW - timedelta(minutes=10)).isoformat(),
        "description": "田间焚烧秸秆，烟较大",
    }
    body.update(overrides)
    return body


async def first_report(h: Harness) -> tuple[dict[str, str], dict[str, Any]]:
    """The small grid loaded and a grid worker's report in it: their headers, its answer."""
    await load_grid(h)
    headers = await login_headers(h, "grid_worker")
    r = await h.client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert r.status_code == 201, r.text
    return headers, r.json()


def at(lon: float, lat: float, crs: str = "wgs84") -> dict[str, Any]:
    return {"lon": lon, "lat": lat, "crs": crs}


async def make_api_key(
    h: Harness, scopes: list[str], cell_code: str | None = None
) -> dict[str, str]:
    """Headers carrying a new API key with these scopes."""
    data = ApiKeyCreate(name="第三方", scopes=scopes, cell_code=cell_code)
    async with h.db.write() as session:
        _, key = await auth_service.create_api_key(session, data, None, h.clock.now())
    return {"X-API-Key": key}


async def count_rows(h: Harness, *tables: str) -> dict[str, int]:
    """How many rows each table holds (as this test's transaction sees them)."""
    counts = {}
    async with h.db.read() as session:
        conn = await session.connection()
        for table in tables:
            counts[table] = int(
                (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            )
    return counts


REPORT_TABLES = (
    "reports",
    "incidents",
    "assignments",
    "incident_events",
    "idempotency_keys",
    "outbox_events",
    "case_counters",
    "photos",
)


PROBLEM = "https://burnban.dev/problems/"


def problem_type(slug: str) -> str:
    """The `type` of a problem document with this slug."""
    return PROBLEM + slug


async def count_where(h: Harness, model: type[SQLModel], *where: ColumnElement[bool] | bool) -> int:
    """How many rows of `model` (matching every `where`) this test's transaction sees."""
    async with h.db.read() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int((await session.exec(query)).one())


async def stored_api_key(
    h: Harness, *scopes: str, cell_code: str | None = None, name: str = "测试接口"
) -> tuple[ApiKey, str]:
    """A new API key with these scopes: its row and the key itself."""
    data = ApiKeyCreate(name=name, scopes=list(scopes), cell_code=cell_code)
    async with h.db.write() as session:
        return await auth_service.create_api_key(session, data, None, h.clock.now())
