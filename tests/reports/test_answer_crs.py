"""?crs=gcj02|bd09: every answer carrying positions (JSON, GeoJSON, CSV, Open311) gives them in
the system asked for, converted from the stored WGS-84; a report's submitted location stays."""

from __future__ import annotations

import csv
import io

import pytest

from geo import crs as geo_crs
from tests.conftest import Harness
from tests.factories import (
    WEST,
    WEST_SOUTH,
    first_report,
    login_headers,
    make_api_key,
    report_body,
)

LON, LAT = 120.02, 30.02  # where report_body puts the fire (WGS-84)


def expected(crs: str, lon: float = LON, lat: float = LAT) -> tuple[float, float]:
    x, y = geo_crs.from_wgs84(lon, lat, crs)
    return round(x, 7), round(y, 7)


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
async def test_json_and_geojson_answers_in_the_crs_asked_for(harness: Harness, crs: str) -> None:
    h = harness
    worker, report = await first_report(h)
    supervisor = await login_headers(h, "supervisor")
    incident = report["incident"]["id"]
    want = expected(crs)
    assert want != (LON, LAT)

    one = (await h.client.get(f"/api/v1/reports/{report['id']}?crs={crs}", headers=worker)).json()
    assert (one["location"]["lon"], one["location"]["lat"]) == want
    assert one["location"]["accuracy_m"] == 12
    assert one["submitted_location"] == {"lon": LON, "lat": LAT, "crs": "wgs84"}  # as sent
    mine = await h.client.get(f"/api/v1/reports?mine=true&crs={crs}", headers=worker)
    assert (
        mine.json()["items"][0]["location"]["lon"],
        mine.json()["items"][0]["location"]["lat"],
    ) == want

    detail = await h.client.get(
        f"/api/v1/incidents/{incident}", params={"crs": crs}, headers=supervisor
    )
    assert (detail.json()["location"]["lon"], detail.json()["location"]["lat"]) == want
    assert (
        detail.json()["reports"][0]["location"]["lon"],
        detail.json()["reports"][0]["location"]["lat"],
    ) == want
    assert detail.headers["etag"]
    feature = await h.client.get(
        f"/api/v1/incidents/{incident}",
        params={"crs": crs, "format": "geojson"},
        headers=supervisor,
    )
    assert feature.json()["geometry"]["coordinates"] == list(want)
    assert feature.json()["properties"]["cell"]["village"]["code"] == WEST_SOUTH

    for path in ("/api/v1/incidents", f"/api/v1/cells/{WEST}/incidents"):
        page = await h.client.get(path, params={"crs": crs}, headers=supervisor)
        item = page.json()["items"][0]
        assert (item["location"]["lon"], item["location"]["lat"]) == want
        collection = await h.client.get(
            path, params={"crs": crs, "format": "geojson"}, headers=supervisor
        )
        assert collection.json()["features"][0]["geometry"]["coordinates"] == list(want)
        rows = await h.client.get(path, params={"crs": crs, "format": "csv"}, headers=supervisor)
        (row,) = list(csv.DictReader(io.StringIO(rows.text[1:])))
        assert (float(row["lon"]), float(row["lat"])) == want

    plain = await h.client.get(f"/api/v1/incidents/{incident}", headers=supervisor)
    assert (plain.json()["location"]["lon"], plain.json()["location"]["lat"]) == (LON, LAT)


async def test_a_cells_boundary_in_the_crs_asked_for(harness: Harness) -> None:
    h = harness
    await first_report(h)
    headers = await login_headers(h, "supervisor")
    plain = await h.client.get(f"/api/v1/cells/{WEST_SOUTH}?format=geojson", headers=headers)
    gcj = await h.client.get(
        f"/api/v1/cells/{WEST_SOUTH}?format=geojson&crs=gcj02", headers=headers
    )
    ring, converted = (
        plain.json()["geometry"]["coordinates"][0],
        gcj.json()["geometry"]["coordinates"][0],
    )
    assert [list(expected("gcj02", x, y)) for x, y in ring] == converted
    assert gcj.json()["properties"] == plain.json()["properties"]


async def test_a_report_posted_answers_in_the_crs_asked_for(harness: Harness) -> None:
    h = harness
    worker, _ = await first_report(h)
    body = report_body(location={"lon": 120.021, "lat": 30.021, "crs": "gcj02"})
    r = await h.client.post("/api/v1/reports?crs=gcj02", json=body, headers=worker)

    assert r.status_code == 201, r.text
    # In and out in GCJ-02: what was sent comes back, to the round trip's precision.
    assert r.json()["location"]["lon"] == pytest.approx(120.021, abs=1e-6)
    assert r.json()["location"]["lat"] == pytest.approx(30.021, abs=1e-6)
    assert r.json()["submitted_location"] == {"lon": 120.021, "lat": 30.021, "crs": "gcj02"}


async def test_open311_requests_in_the_crs_asked_for(harness: Harness) -> None:
    h = harness
    await first_report(h)
    reader = await make_api_key(h, ["incidents:read"])
    (request,) = (await h.client.get("/open311/v2/requests.json?crs=bd09", headers=reader)).json()
    assert (request["long"], request["lat"]) == expected("bd09")
    xml = await h.client.get("/open311/v2/requests.xml?crs=bd09", headers=reader)
    assert f"<lat>{expected('bd09')[1]}</lat>" in xml.text


async def test_an_unknown_crs_is_refused(harness: Harness) -> None:
    h = harness
    worker, report = await first_report(h)
    r = await h.client.get(f"/api/v1/reports/{report['id']}?crs=epsg3857", headers=worker)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["query", "crs"]
