"""The OpenAPI document tells the truth: schemathesis calls every operation with data made from
the document (valid and invalid) and checks each answer against it, on both databases.

A bounded budget and a fixed seed: the same cases every run. The app runs as served (its own
engine, its lifespan), on a database of its own holding the small grid, an admin and a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.auth.schemas import ApiKeyCreate, UserCreate
from app.clock import SystemClock
from app.db import Database, create_engine
from app.grid import service as grid_service
from app.main import create_app
from app.reports import service as reports_service
from app.reports.schemas import ReportIn
from app.spatial.store import store_for
from tests.conftest import (
    _require_postgres,
    drop_postgres_database,
    new_postgres_database,
    new_sqlite_database,
    settings_for,
)
from tests.factories import report_body, small_grid

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
MAX_EXAMPLES = 25
# Called with the API key (every scope) rather than as the admin: what a key is for.
KEY_OPERATIONS = {"POST /api/v1/reports", "GET /open311/v2/requests.json"}


async def _seed(url: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The small grid, an admin and an API key with every scope (their headers), a report."""
    config = settings_for(url, tmp_path)
    db = Database(create_engine(config.url, config))
    now = SystemClock().now()
    try:
        async with db.write() as session:
            await grid_service.import_grid(session, store_for(db.dialect), small_grid(), None, now)
            admin = await auth_service.create_user(
                session,
                UserCreate(
                    username="contract-admin", password="x" * 12, name="管理员", role="admin"
                ),
                None,
                now,
            )
            scopes: Any = ["reports:write", "incidents:read", "grid:read", "webhooks:manage"]
            row, key = await auth_service.create_api_key(
                session, ApiKeyCreate(name="契约", scopes=scopes), None, now
            )
        # An incident, so that lists and GeoJSON answer real items to check against the schema.
        reporter = Principal(kind="api_key", id=row.id, name=row.name, scopes=frozenset(scopes))
        report = report_body(observed_at=(now - timedelta(minutes=5)).isoformat())
        await reports_service.submit_report(
            db, store_for(db.dialect), reporter, ReportIn.model_validate(report), None, now
        )
    finally:
        await db.dispose()
    token = auth_service.issue_token(admin, config.secret_key, now, 60)
    return {"Authorization": f"Bearer {token}"}, {"X-API-Key": key}


Contract = tuple[schemathesis.schemas.BaseSchema, dict[str, str], dict[str, str]]


@pytest.fixture
def contract(
    backend: str, postgres_problem: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Contract]:
    """The app's schema, loaded from the app, and the admin's and the key's headers."""
    if backend == "postgis":
        _require_postgres(postgres_problem)
    tmp_path = tmp_path_factory.mktemp("contract")
    url = (
        new_postgres_database("burnban_contract")
        if backend == "postgis"
        else new_sqlite_database(tmp_path)
    )
    admin, key = asyncio.run(_seed(url, tmp_path))
    config = settings_for(url, tmp_path).model_copy(
        update={"rate_limit_writes": 1_000_000, "run_worker_in_process": False}
    )
    app = create_app(config)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        yield schema, admin, key
    finally:
        asgi.shutdown_lifespans()  # the app's engine closes before its database goes
        if backend == "postgis":
            drop_postgres_database(url)


def _summary(exc: BaseException) -> str:
    """What failed (the check, the statuses): the same failure with other data reads alike."""
    text = str(exc).split("Reproduce with:")[0]
    return " ".join(text.split("\n[")[0].split())


def _failures_of(
    operation: Any, mode: GenerationMode, headers: dict[str, str], calls: list[str]
) -> list[str]:
    """Each distinct failure of one operation in one generation mode; each call in `calls`."""
    failures: dict[str, str] = {}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case[Any]) -> None:
        calls.append(operation.label)
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except BaseExceptionGroup as exc:  # schemathesis's failures, a group of them per case
            what = f"{operation.label} [{mode.value}]: {_summary(exc)}"
            failures.setdefault(what, str(exc).split("Reproduce with:")[0])

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE
    return [failures[what] for what in sorted(failures)]


def test_every_operation_answers_as_documented(contract: Contract) -> None:
    schema, admin, key = contract
    failures: list[str] = []
    calls: list[str] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself is valid
        operations.append(result.ok())
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            headers = key if operation.label in KEY_OPERATIONS else admin
            failures.extend(_failures_of(operation, mode, headers, calls))
    assert {operation.label for operation in operations} == set(calls)  # each one was called
    assert len(operations) >= 38
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
