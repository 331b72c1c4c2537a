"""Open311 GeoReport v2, checked field by field against the specification's examples."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from app.incidents.models import Incident, IncidentEvent
from tests.conftest import Harness
from tests.factories import NOW, count_rows, load_grid, make_api_key

BASE = "/open311/v2"
SERVICE_KEYS = {
    "service_code", "service_name", "description", "metadata", "type", "keywords", "group",
}  # fmt: skip
REQUEST_KEYS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
    "long", "media_url",
}  # fmt: skip


def assert_spec_error(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"code", "description"} and body[0]["code"] == status
    assert body[0]["description"]


async def file(h: Harness, key: str, **fields: Any) -> httpx.Response:
    form = {
        "api_key": key,
        "service_code": "open_burning",
        "lat": "30.02",
        "long": "120.02",
        "attribute[material]": "straw",
        "description": "田间焚烧秸秆",
        "email": "ignored@example.org",
    }
    form.update({k: v for k, v in fields.items() if v is not None})
    for name in [k for k, v in fields.items() if v is None]:
        form.pop(name, None)
    return await h.client.post(f"{BASE}/requests.json", data=form)


async def reporter_key(h: Harness) -> str:
    await load_grid(h)
    return (await make_api_key(h, ["reports:write"]))["X-API-Key"]


async def test_discovery(harness: Harness) -> None:
    answer = await harness.client.get(f"{BASE}/discovery.json")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = body["endpoints"]
    assert set(endpoint) == {"specification", "url", "changeset", "type", "formats"}
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://burnban.test/open311/v2"
    assert endpoint["type"] == "production"
    assert endpoint["formats"] == ["application/json", "application/xml"]


async def test_categories_are_services(harness: Harness) -> None:
    answer = await harness.client.get(f"{BASE}/services.json")
    assert answer.status_code == 200
    services = {s["service_code"]: s for s in answer.json()}
    assert all(set(s) == SERVICE_KEYS for s in services.values())
    burning, smoking = services["open_burning"], services["cured_meat_smoking"]
    assert burning["metadata"] is True and smoking["metadata"] is False
    assert burning["type"] == smoking["type"] == "realtime"
    assert isinstance(burning["keywords"], str) and "straw" in burning["keywords"]
    assert burning["service_name"] and burning["group"]


async def test_a_service_definition_lists_material_as_a_single_value_list(
    harness: Harness,
) -> None:
    answer = await harness.client.get(f"{BASE}/services/open_burning.json")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"service_code", "attributes"} and body["service_code"] == "open_burning"
    (material,) = body["attributes"]
    assert set(material) == {
        "variable", "code", "datatype", "required", "datatype_description", "order",
        "description", "values",
    }  # fmt: skip
    assert material["variable"] is True and material["code"] == "material"
    assert material["datatype"] == "singlevaluelist" and material["order"] == 1
    assert [v["key"] for v in material["values"]] == ["straw", "garbage", "leaves", "other"]
    assert all(set(v) == {"key", "name"} and v["name"] for v in material["values"])
    smoking = await harness.client.get(f"{BASE}/services/cured_meat_smoking.json")
    assert smoking.json() == {"service_code": "cured_meat_smoking", "attributes": []}
    assert_spec_error(await harness.client.get(f"{BASE}/services/nope.json"), 404)


async def test_posting_a_request_files_a_report_and_answers_the_case(harness: Harness) -> None:
    h = harness
    key = await reporter_key(h)
    answer = await file(h, key)
    assert answer.status_code == 201, answer.text
    (created,) = answer.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert created["service_request_id"].startswith("330106-2026-")
    assert created["account_id"] is None and created["service_notice"]
    counts = await count_rows(h, "reports", "incidents", "outbox_events")
    assert counts == {"reports": 1, "incidents": 1, "outbox_events": 2}  # the same path as /reports

    reader = await make_api_key(h, ["incidents:read"])
    (request,) = (
        await h.client.get(f"{BASE}/requests/{created['service_request_id']}.json", headers=reader)
    ).json()
    assert set(request) == REQUEST_KEYS
    assert request["service_request_id"] == created["service_request_id"]
    assert request["status"] == "open" and request["status_notes"] is None
    assert request["service_code"] == "open_burning" and request["service_name"] == "露天焚烧"
    assert request["description"] == "田间焚烧秸秆"
    assert request["agency_responsible"] == "西镇"  # the township's name
    assert request["requested_datetime"] == "2026-11-20T02:00:00Z"
    assert request["updated_datetime"] == "2026-11-20T02:00:00Z"
    assert request["expected_datetime"] == "2026-11-20T02:15:00Z"  # acknowledge within 15 min
    assert (request["lat"], request["long"]) == (30.02, 120.02)
    assert request["address"] == "" and request["media_url"] is None


async def test_a_retry_with_device_id_and_token_files_nothing_new(harness: Harness) -> None:
    h = harness
    key = await reporter_key(h)
    first = await file(h, key, device_id="phone-1", client_token="t-1")
    again = await file(h, key, device_id="phone-1", client_token="t-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert (await count_rows(h, "reports"))["reports"] == 1
    other = await file(h, key, device_id="phone-1", client_token="t-2")
    assert other.status_code == 201
    assert (await count_rows(h, "reports"))["reports"] == 2


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"api_key": "bb_not-a-key"}, 403),
        ({"service_code": "graffiti"}, 400),
        ({"lat": None}, 400),
        ({"lat": "north"}, 400),
        ({"lat": "95"}, 400),
        ({"lat": "10.0", "long": "10.0"}, 400),  # in no village of the grid
        ({"attribute[material]": "tyres"}, 400),
        ({"service_code": None}, 400),
    ],
)
async def test_refusals_use_the_specifications_errors(
    harness: Harness, fields: dict[str, Any], status: int
) -> None:
    h = harness
    key = await reporter_key(h)
    assert_spec_error(await file(h, key, **fields), status)
    assert (await count_rows(h, "reports"))["reports"] == 0


async def test_a_key_without_reports_write_is_refused(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    reader = (await make_api_key(h, ["incidents:read"]))["X-API-Key"]
    assert_spec_error(await file(h, reader), 403)


async def test_listing_requests_with_the_specifications_filters(harness: Harness) -> None:
    h = harness
    key = await reporter_key(h)
    west = (await file(h, key)).json()[0]["service_request_id"]
    h.clock.advance(timedelta(minutes=1))
    east = (
        await file(
            h, key, service_code="cured_meat_smoking", lat="30.07", long="120.07",
            **{"attribute[material]": None},
        )
    ).json()[0]["service_request_id"]  # fmt: skip
    h.clock.advance(timedelta(minutes=1))

    reader = await make_api_key(h, ["incidents:read"])

    async def ids(**params: str) -> list[str]:
        answer = await h.client.get(f"{BASE}/requests.json", params=params, headers=reader)
        assert answer.status_code == 200, answer.text
        return [r["service_request_id"] for r in answer.json()]

    assert await ids() == [east, west]  # newest first
    assert await ids(service_code="open_burning") == [west]
    assert await ids(service_code="open_burning,cured_meat_smoking") == [east, west]
    assert await ids(status="open") == [east, west]
    assert await ids(status="closed") == []
    assert await ids(service_request_id=f"{west},nope") == [west]
    assert await ids(service_request_id=west, status="closed") == [west]  # ids override
    assert await ids(start_date="2026-11-20T02:00:30Z") == [east]
    assert await ids(start_date="2026-11-20T10:00:00+08:00", end_date="2026-11-20T10:00:30+08:00")
    assert await ids(end_date="2026-11-19T00:00:00Z") == []

    await _reject(h, west, "重复上报，与另一案件相同")
    closed = (
        await h.client.get(f"{BASE}/requests.json", params={"status": "closed"}, headers=reader)
    ).json()
    assert [r["service_request_id"] for r in closed] == [west]
    assert (
        closed[0]["status"] == "closed" and closed[0]["status_notes"] == "重复上报，与另一案件相同"
    )

    h.clock.advance(timedelta(days=91))
    assert await ids() == []  # the default is the last 90 days


async def _reject(h: Harness, case_number: str, note: str) -> None:
    async with h.db.write() as session:
        incident = (
            await session.exec(select(Incident).where(Incident.case_number == case_number))
        ).one()
        incident.status = "rejected"
        session.add(incident)
        session.add(
            IncidentEvent(
                incident_id=incident.id,
                district_code=incident.district_code,
                at=NOW,
                action="reject",
                from_status="dispatched",
                to_status="rejected",
                note=note,
            )
        )


@pytest.mark.parametrize(
    "params",
    [
        {"status": "pending"},
        {"start_date": "yesterday"},
        {"start_date": "2026-11-01T00:00:00"},  # no offset
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},  # > 90 days
        {"start_date": "2026-11-02T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},
    ],
)
async def test_bad_request_filters_are_400(harness: Harness, params: dict[str, str]) -> None:
    reader = await make_api_key(harness, ["incidents:read"])
    answer = await harness.client.get(f"{BASE}/requests.json", params=params, headers=reader)
    assert_spec_error(answer, 400)


async def test_unknown_requests_and_resources_are_404(harness: Harness) -> None:
    reader = await make_api_key(harness, ["incidents:read"])
    unknown = await harness.client.get(f"{BASE}/requests/330106-2026-999999.json", headers=reader)
    assert_spec_error(unknown, 404)
    assert_spec_error(await harness.client.get(f"{BASE}/nothing"), 404)
    assert_spec_error(await harness.client.get(f"{BASE}/services.yaml"), 404)
