"""POST /reports refusals: 422/413 problem+json, and nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Harness
from tests.factories import (
    NOW,
    REPORT_TABLES,
    at,
    count_rows,
    load_grid,
    login_headers,
    report_body,
)

PROBLEMS = "https://burnban.dev/problems/"


async def _nothing_stored(h: Harness) -> None:
    counts = await count_rows(h, *REPORT_TABLES)
    assert set(counts.values()) == {0}, counts


@pytest.mark.parametrize(
    ("overrides", "slug"),
    [
        ({"location": at(120.02, 91.0)}, "validation"),
        ({"location": at(181.0, 30.02)}, "validation"),
        ({"location": at(-180.5, 30.02)}, "validation"),
        ({"location": {"lon": "NaN", "lat": 30.02}}, "validation"),
        ({"location": {"lon": 120.02, "lat": "Infinity"}}, "validation"),
        ({"location": at(120.02, 30.02, "utm")}, "validation"),
        ({"category": "littering"}, "validation"),
        ({"material": "tyres"}, "validation"),
        ({"category": "cured_meat_smoking", "material": "straw"}, "validation"),
        ({"observed_at": (NOW + timedelta(minutes=6)).isoformat()}, "validation"),
        ({"observed_at": (NOW - timedelta(days=30, minutes=1)).isoformat()}, "validation"),
        ({"observed_at": "2026-11-20T01:50:00"}, "validation"),
        ({"observed_at": 1795000000}, "validation"),
        ({"observed_at": "yesterday"}, "validation"),
        ({"description": "烟" * 2001}, "validation"),
        ({"location": at(121.0, 30.02)}, "outside-grid"),
        ({"location": None}, "validation"),
        ({"colour": "grey"}, "validation"),
    ],
)
async def test_refused_reports_store_nothing(
    harness: Harness, overrides: dict[str, Any], slug: str
) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    body = report_body(**overrides)
    r = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == PROBLEMS + slug
    await _nothing_stored(harness)


async def test_refused_with_an_idempotency_key_keeps_no_key(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    body = report_body(category="littering", client_report_id="k-1")
    r = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert r.status_code == 422
    await _nothing_stored(harness)
    r = await harness.client.post(
        "/api/v1/reports", json=report_body(client_report_id="k-1"), headers=headers
    )
    assert r.status_code == 201, r.text


async def test_limits_at_the_edges_are_accepted(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    for overrides in (
        {"observed_at": (NOW + timedelta(minutes=5)).isoformat()},
        {"observed_at": (NOW - timedelta(days=30)).isoformat()},
        {"description": "烟" * 2000},
        {"category": "cured_meat_smoking", "material": None},
        {"observed_at": "2026-11-20T09:55:00+08:00"},
    ):
        r = await harness.client.post(
            "/api/v1/reports", json=report_body(**overrides), headers=headers
        )
        assert r.status_code == 201, (overrides, r.text)


async def test_malformed_json_is_refused(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    headers["Content-Type"] = "application/json"
    r = await harness.client.post("/api/v1/reports", content=b'{"category": ', headers=headers)
    assert r.status_code == 422
    assert r.json()["type"] == PROBLEMS + "validation"
    await _nothing_stored(harness)


async def test_a_body_over_64_kib_is_refused_by_its_declared_length(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    body = report_body(padding="x" * (64 * 1024))
    r = await harness.client.post("/api/v1/reports", json=body, headers=headers)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == PROBLEMS + "payload-too-large"
    await _nothing_stored(harness)


async def test_a_streamed_body_over_64_kib_is_refused_while_reading(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")
    headers["Content-Type"] = "application/json"
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"description": "'
        for _ in range(1000):  # far more than the limit, unless the server stops reading
            sent += 1
            yield b"x" * 1024

    r = await harness.client.post("/api/v1/reports", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert r.json()["type"] == PROBLEMS + "payload-too-large"
    assert sent < 1000
    await _nothing_stored(harness)
