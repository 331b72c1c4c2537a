"""Concurrent reports against a running server: one fire makes one incident, one key one report.

These run on a database of their own, through a real uvicorn server and several connections,
so the databases' own locking is what is tested.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.auth import service as auth_service
from app.auth.schemas import UserCreate
from app.config import Settings
from app.db import Database, create_engine
from app.grid import service as grid_service
from app.incidents.service import case_year
from app.main import create_app
from app.spatial.store import store_for
from tests.conftest import settings_for
from tests.factories import DISTRICT, PASSWORD, WEST_SOUTH, at, report_body, small_grid
from tests.live import running

PHONES = 8


async def _prepare(settings: Settings, workers: int) -> list[dict[str, str]]:
    """Load the grid and make grid workers; their headers."""
    db = Database(create_engine(settings.url, settings))
    now = datetime.now(UTC)
    try:
        async with db.write() as session:
            await grid_service.import_grid(session, store_for(db.dialect), small_grid(), None, now)
        headers = []
        for i in range(workers):
            data = UserCreate(
                username=f"phone{i}",
                password=PASSWORD,
                name=f"网格员{i}",
                role="grid_worker",
                cell_code=WEST_SOUTH,
            )
            async with db.write() as session:
                user = await auth_service.create_user(session, data, None, now)
            token = auth_service.issue_token(user, settings.secret_key, now, 60)
            headers.append({"Authorization": f"Bearer {token}"})
        return headers
    finally:
        await db.dispose()


async def _counts(settings: Settings) -> dict[str, Any]:
    db = Database(create_engine(settings.url, settings))
    try:
        async with db.read() as session:
            conn = await session.connection()
            result = {}
            for table in ("reports", "incidents", "idempotency_keys", "case_counters"):
                query = text(f"SELECT count(*) FROM {table}")
                result[table] = (await conn.execute(query)).scalar_one()
            return result
    finally:
        await db.dispose()


async def _post_all(base_urls: list[str], requests: list[tuple[dict[str, str], Any]]) -> list[Any]:
    """Post all at once, spread over the servers (each an API process of its own)."""
    async with httpx.AsyncClient(timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"{base_urls[i % len(base_urls)]}/api/v1/reports", json=b, headers=h)
                for i, (h, b) in enumerate(requests)
            )
        )
    return list(responses)


def _observed() -> str:
    return (datetime.now(UTC) - timedelta(minutes=2)).isoformat()


def test_phones_reporting_one_fire_at_once_make_one_incident(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_database_url, tmp_path)
    phones = asyncio.run(_prepare(settings, PHONES))
    # The phones stand around the fire, up to ~100 m apart.
    requests = [
        (h, report_body(location=at(120.02 + i * 0.0001, 30.02), observed_at=_observed()))
        for i, h in enumerate(phones)
    ]
    # Two servers, each with its own engine: on SQLite they share only the database's lock.
    with running(create_app(settings)) as first, running(create_app(settings)) as second:
        responses = asyncio.run(_post_all([first, second], requests))
    assert [r.status_code for r in responses] == [201] * PHONES, [r.text for r in responses]
    incidents = {r.json()["incident"]["id"] for r in responses}
    assert len(incidents) == 1
    assert sum(r.json()["incident"]["is_new"] for r in responses) == 1
    counts = asyncio.run(_counts(settings))
    assert counts["reports"] == PHONES
    assert counts["incidents"] == 1


def test_fires_far_apart_at_once_get_distinct_case_numbers(
    fresh_database_url: str, tmp_path: Path
) -> None:
    # Fewer pooled connections than reports at once: a unit of work taking a case number
    # while it holds a connection must not wait for a second from the same pool.
    settings = settings_for(fresh_database_url, tmp_path).model_copy(update={"db_pool_size": 1})
    phones = asyncio.run(_prepare(settings, PHONES))
    requests = [
        (h, report_body(location=at(120.005 + i * 0.005, 30.02), observed_at=_observed()))
        for i, h in enumerate(phones)
    ]
    with running(create_app(settings)) as base_url:
        responses = asyncio.run(_post_all([base_url], requests))
    assert [r.status_code for r in responses] == [201] * PHONES, [r.text for r in responses]
    numbers = {r.json()["incident"]["case_number"] for r in responses}
    assert len(numbers) == PHONES


def test_refused_reports_take_no_case_number(fresh_database_url: str, tmp_path: Path) -> None:
    """On PostgreSQL a new incident's number is taken with the report's scene, before the
    report is checked: a report refused for its material or its time must not take one (a
    number taken is burnt). Not in a test's transaction: here the scene commits at once."""
    settings = settings_for(fresh_database_url, tmp_path)
    (phone,) = asyncio.run(_prepare(settings, 1))
    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    refused = [
        report_body(material="tyres", observed_at=_observed()),
        report_body(category="cured_meat_smoking", material="straw", observed_at=_observed()),
        report_body(observed_at=future),
    ]
    with running(create_app(settings)) as base_url:
        answers = asyncio.run(_post_all([base_url], [(phone, body) for body in refused]))
        assert [r.status_code for r in answers] == [422] * len(refused), [r.text for r in answers]
        [accepted] = asyncio.run(_post_all([base_url], [(phone, report_body())]))
    year = case_year(datetime.now(UTC))
    assert accepted.json()["incident"]["case_number"] == f"{DISTRICT}-{year}-000001"


def test_concurrent_retries_of_one_key_store_one_report(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_database_url, tmp_path)
    (phone,) = asyncio.run(_prepare(settings, 1))
    headers = {**phone, "Idempotency-Key": "retry-storm"}
    body = report_body(observed_at=_observed())
    with running(create_app(settings)) as base_url:
        responses = asyncio.run(_post_all([base_url], [(headers, body)] * PHONES))
    assert [r.status_code for r in responses] == [201] * PHONES, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    replayed = [r.headers.get("idempotent-replayed") for r in responses]
    assert replayed.count("true") == PHONES - 1
    counts = asyncio.run(_counts(settings))
    assert (counts["reports"], counts["incidents"], counts["idempotency_keys"]) == (1, 1, 1)
