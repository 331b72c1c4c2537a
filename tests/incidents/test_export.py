"""Incident lists as GeoJSON and as streamed CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from app.incidents import export, queries
from tests.conftest import Harness
from tests.factories import DISTRICT
from tests.incidents.support import (
    EAST,
    EAST_SOUTH,
    WEST,
    WEST_NORTH,
    cast,
    ok,
    open_incident,
)

FINE = {"kind": "fine", "amount_yuan": "1200.50", "legal_basis": "《大气污染防治法》"}


async def test_geojson_by_accept_or_format(harness: Harness) -> None:
    people = await cast(harness)
    first = await open_incident(harness, people.worker)
    harness.clock.advance(timedelta(minutes=1))
    second = await open_incident(harness, people.north_worker, village=WEST_NORTH)
    path = f"/api/v1/cells/{WEST}/incidents"
    json_page = (await harness.client.get(path, headers=people.supervisor)).json()
    by_accept = await harness.client.get(
        path, headers={**people.supervisor, "Accept": "application/geo+json"}
    )
    by_format = await harness.client.get(
        path, params={"format": "geojson"}, headers=people.supervisor
    )
    for r in (by_accept, by_format):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        assert body["type"] == "FeatureCollection"
        assert body["next_cursor"] is None
        assert [f["id"] for f in body["features"]] == [second, first]
        for feature, item in zip(body["features"], json_page["items"], strict=True):
            assert feature["type"] == "Feature"
            assert feature["geometry"] == {
                "type": "Point",
                "coordinates": [item["location"]["lon"], item["location"]["lat"]],
            }
            assert feature["properties"] == {k: v for k, v in item.items() if k != "location"}
    paged = await harness.client.get(
        path, params={"format": "geojson", "limit": 1}, headers=people.supervisor
    )
    assert len(paged.json()["features"]) == 1 and paged.json()["next_cursor"]


async def test_one_incident_as_a_feature(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    plain = await harness.client.get(f"/api/v1/incidents/{incident}", headers=people.admin)
    r = await harness.client.get(
        f"/api/v1/incidents/{incident}", params={"format": "geojson"}, headers=people.admin
    )
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["etag"] == plain.headers["etag"] == '"1"'
    feature = r.json()
    assert feature["type"] == "Feature" and feature["id"] == incident
    assert feature["geometry"] == {"type": "Point", "coordinates": [120.02, 30.02]}
    assert feature["properties"]["timeline"] == plain.json()["timeline"]
    assert "location" not in feature["properties"]


def _rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


async def test_csv_has_one_flat_row_per_incident(harness: Harness) -> None:
    people = await cast(harness)
    closed = await open_incident(harness, people.worker)
    for action, body in (
        ("acknowledge", {}),
        ("arrive", {}),
        ("resolve", {"outcome": "penalized", "penalty": FINE}),
    ):
        await ok(harness, people.west_officer, closed, action, **body)
    await ok(harness, people.supervisor, closed, "verify", passed=True)
    harness.clock.advance(timedelta(minutes=1))
    other = await open_incident(harness, people.east_worker, village=EAST_SOUTH)
    r = await harness.client.get(
        "/api/v1/incidents", params={"format": "csv"}, headers=people.supervisor
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    rows = _rows(r.text)
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    assert [row["id"] for row in rows] == [other, closed]
    done = rows[1]
    assert done["status"] == "closed"
    assert done["township_name"] == "西镇"
    assert done["village_name"] == "西南村"
    assert (done["responsible"], done["lead"], done["cooperating"]) == (
        WEST,
        "urban-management",
        "",
    )
    assert (done["outcome"], done["penalty_kind"], done["penalty_amount_yuan"]) == (
        "penalized",
        "fine",
        "1200.50",
    )
    assert done["legal_basis"] == "《大气污染防治法》"
    assert done["opened_at"] == "2026-11-20T10:00:00+08:00"  # China time, its offset shown
    assert done["closed_at"] == "2026-11-20T10:00:00+08:00"
    assert (done["overdue"], rows[0]["overdue"]) == ("false", "false")
    # Filters and jurisdiction apply to the export too.
    r = await harness.client.get(
        "/api/v1/incidents", params={"format": "csv", "status": "closed"}, headers=people.admin
    )
    assert [row["id"] for row in _rows(r.text)] == [closed]
    r = await harness.client.get(
        f"/api/v1/cells/{WEST}/incidents", params={"format": "csv"}, headers=people.east_officer
    )
    assert r.status_code == 403  # a cell outside the officer's reach, in any format
    assert r.headers["content-type"] == "application/problem+json"
    r = await harness.client.get(
        f"/api/v1/cells/{DISTRICT}/incidents", params={"format": "csv"}, headers=people.east_officer
    )
    rows = _rows(r.text)  # the district is above the officer's township: what it may see
    assert rows and {row["township_code"] for row in rows} == {EAST}


async def test_csv_and_geojson_by_accept_like_format(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    path = "/api/v1/incidents"
    for accept, media in (
        ("text/csv", "text/csv"),
        ("text/csv;q=0.9, application/json;q=0.5", "text/csv"),
        ("application/json;q=0.9, application/geo+json", "application/geo+json"),
        ("application/geo+json;q=0, */*", "application/json"),
        ("application/json, text/csv", "application/json"),
    ):
        r = await harness.client.get(path, headers={**people.supervisor, "Accept": accept})
        assert r.status_code == 200, (accept, r.text)
        assert r.headers["content-type"].startswith(media), accept
        assert incident in r.text
    by_format = await harness.client.get(path, params={"format": "csv"}, headers=people.supervisor)
    by_accept = await harness.client.get(path, headers={**people.supervisor, "Accept": "text/csv"})
    assert by_accept.text == by_format.text


async def test_csv_pages_through_the_database_in_chunks(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CSV_CHUNK", 2)
    chunk_sizes: list[int] = []
    real_chunks = queries.chunks

    async def spy(*args: Any, **kwargs: Any) -> AsyncIterator[list[queries.Row]]:
        async for rows in real_chunks(*args, **kwargs):
            chunk_sizes.append(len(rows))
            yield rows

    monkeypatch.setattr(queries, "chunks", spy)
    people = await cast(harness)
    made = []
    for spot in (-1, 0, 1, 2):
        made.append(await open_incident(harness, people.worker, spot=spot))
        harness.clock.advance(timedelta(minutes=1))
    made.append(await open_incident(harness, people.north_worker, village=WEST_NORTH))
    r = await harness.client.get(
        "/api/v1/incidents", params={"format": "csv", "order": "asc"}, headers=people.admin
    )
    assert [row["id"] for row in _rows(r.text)] == made
    assert chunk_sizes == [2, 2, 1]


async def test_csv_in_chinese_has_chinese_headers(harness: Harness) -> None:
    people = await cast(harness)
    incident = await open_incident(harness, people.worker)
    headers = {**people.supervisor, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}

    r = await harness.client.get("/api/v1/incidents", params={"format": "csv"}, headers=headers)

    assert r.status_code == 200
    (row,) = _rows(r.text)
    assert row["编号"] == incident and row["案件编号"].startswith("330106-2026-")
    assert row["状态"] == "dispatched"  # codes stay codes
    assert row["立案时间"] == "2026-11-20T10:00:00+08:00"
    assert row["乡镇（街道）"] == "西镇"
    english = await harness.client.get(
        "/api/v1/incidents", params={"format": "csv"}, headers=people.supervisor
    )
    assert list(_rows(english.text)[0])[:3] == ["id", "case_number", "category"]
