"""A report is planned from what it read and filed in one step: if what it read changed before
the filing, nothing is written and the report is planned anew."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import httpx

from app.dbdriver import Pooled
from app.spatial.store import Filed, Filing, Numbering, Scene, SpatialStore, WritingCaller
from tests.conftest import Harness
from tests.factories import at, count_rows, first_report, login_headers, report_body

PROBLEMS = "https://burnban.dev/problems/"
NEAR = at(120.0201, 30.02)  # ~10 m from report_body()'s point


class Outdated:
    """The app's store, except that the first `times` scenes are out of date: the incident
    nearby has changed since (`changed`), or had not opened yet (`unopened`)."""

    def __init__(self, store: SpatialStore, how: str, times: int) -> None:
        self.store, self.how, self.times = store, how, times
        self.filed: list[Filed] = []

    async def scene(
        self,
        conn: Pooled,
        category: str,
        lon: float,
        lat: float,
        observed_at: datetime,
        numbering: Numbering | None = None,
        caller: WritingCaller | None = None,
    ) -> Scene:
        scene = await self.store.scene(conn, category, lon, lat, observed_at, numbering, caller)
        if self.times == 0 or scene.nearest is None:
            return scene
        self.times -= 1
        if self.how == "unopened":
            return dataclasses.replace(scene, nearest=None)
        older = dataclasses.replace(scene.nearest, version=scene.nearest.version - 1)
        return dataclasses.replace(scene, nearest=older)

    async def file_report(self, conn: Pooled, filing: Filing) -> Filed:
        filed = await self.store.file_report(conn, filing)
        self.filed.append(filed)
        return filed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _outdated(h: Harness, how: str, times: int) -> Outdated:
    store = Outdated(h.app.state.store, how, times)
    h.app.state.store = store
    return store


async def _report_near(
    h: Harness, headers: dict[str, str], key: str | None = None
) -> httpx.Response:
    """A second report ~10 m from the first."""
    keyed = headers if key is None else headers | {"Idempotency-Key": key}
    return await h.client.post("/api/v1/reports", json=report_body(location=NEAR), headers=keyed)


async def _incident(h: Harness, incident_id: str) -> dict[str, Any]:
    admin = await login_headers(h, "admin")
    r = await h.client.get(f"/api/v1/incidents/{incident_id}", headers=admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _planned_again(h: Harness, how: str) -> tuple[dict[str, Any], httpx.Response]:
    """A first report, then one near it whose first filing finds its scene outdated (`how`)
    and whose second is filed: the first's answer, and the second's."""
    headers, first = await first_report(h)
    store = _outdated(h, how, times=1)
    r = await _report_near(h, headers)
    assert r.status_code == 201, r.text
    assert store.filed == [Filed.STALE, Filed.FILED]
    return first, r


async def test_a_report_planned_on_an_incident_changed_since_is_planned_again(
    harness: Harness,
) -> None:
    first, r = await _planned_again(harness, "changed")
    assert r.json()["incident"] == {**first["incident"], "is_new": False}
    incident = await _incident(harness, first["incident"]["id"])
    assert (incident["report_count"], incident["version"]) == (2, 2)
    assert [e["action"] for e in incident["timeline"]] == ["opened", "routed", "report_added"]
    counts = await count_rows(harness, "reports", "incidents", "outbox_events")
    assert counts == {"reports": 2, "incidents": 1, "outbox_events": 4}


async def test_a_report_planned_to_open_where_one_has_opened_since_joins_it(
    harness: Harness,
) -> None:
    first, r = await _planned_again(harness, "unopened")
    assert r.json()["incident"]["id"] == first["incident"]["id"]
    assert r.json()["incident"]["is_new"] is False
    assert (await count_rows(harness, "incidents"))["incidents"] == 1


async def test_a_report_whose_scene_keeps_changing_is_refused_and_stores_nothing(
    harness: Harness,
) -> None:
    headers, _ = await first_report(harness)
    before = await count_rows(harness, "reports", "incident_events", "outbox_events")
    store = _outdated(harness, "changed", times=1000)
    r = await _report_near(harness, headers, key="busy-fire")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == PROBLEMS + "conflict"
    assert store.filed == [Filed.STALE] * 10
    assert await count_rows(harness, "reports", "incident_events", "outbox_events") == before
    assert (await count_rows(harness, "idempotency_keys"))["idempotency_keys"] == 0
    store.times = 0  # the fire calms down: the retry with the same key is filed
    r = await _report_near(harness, headers, key="busy-fire")
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
