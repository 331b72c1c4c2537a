"""Open311 as the specification and its clients expect: every resource also as XML, the key
also as X-API-Key, and service requests private unless the operator opens a public view."""

from __future__ import annotations

from xml.etree import ElementTree

import httpx

from tests.conftest import Harness
from tests.factories import EAST, WEST, load_grid, make_api_key

BASE = "/open311/v2"


def xml_of(answer: httpx.Response, status: int = 200) -> ElementTree.Element:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    return ElementTree.fromstring(answer.content)


async def _file(h: Harness, key: dict[str, str], lon: str, lat: str, text: str) -> str:
    form = {"service_code": "open_burning", "lat": lat, "long": lon, "description": text}
    answer = await h.client.post(f"{BASE}/requests.json", data=form, headers=key)
    assert answer.status_code == 201, answer.text
    return str(answer.json()[0]["service_request_id"])


async def test_every_resource_is_also_served_as_xml(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    writer = await make_api_key(h, ["reports:write"])
    reader = await make_api_key(h, ["incidents:read"])

    services = xml_of(await h.client.get(f"{BASE}/services.xml"))
    assert services.tag == "services"
    codes = [s.findtext("service_code") for s in services.findall("service")]
    assert codes == [
        s["service_code"] for s in (await h.client.get(f"{BASE}/services.json")).json()
    ]
    definition = xml_of(await h.client.get(f"{BASE}/services/open_burning.xml"))
    assert definition.tag == "service_definition"
    values = definition.findall("attributes/attribute/values/value/key")
    assert [v.text for v in values] == ["straw", "garbage", "leaves", "other"]
    discovery = xml_of(await h.client.get(f"{BASE}/discovery.xml"))
    assert [f.text for f in discovery.findall("endpoints/endpoint/formats/format")] == [
        "application/json",
        "application/xml",
    ]

    form = {"service_code": "open_burning", "lat": "30.02", "long": "120.02"}
    created = xml_of(await h.client.post(f"{BASE}/requests.xml", data=form, headers=writer), 201)
    assert created.tag == "service_requests"
    case = created.findtext("request/service_request_id")
    assert case and case.startswith("330106-")

    listed = xml_of(await h.client.get(f"{BASE}/requests.xml", headers=reader))
    assert [r.findtext("service_request_id") for r in listed.findall("request")] == [case]
    one = xml_of(await h.client.get(f"{BASE}/requests/{case}.xml", headers=reader))
    assert one.findtext("request/status") == "open"
    assert one.findtext("request/lat") == "30.02" and one.findtext("request/long") == "120.02"


async def test_refusals_of_xml_resources_are_xml(harness: Harness) -> None:
    for answer, status in (
        (await harness.client.get(f"{BASE}/services/nope.xml"), 404),
        (await harness.client.get(f"{BASE}/requests.xml"), 403),
        (await harness.client.get(f"{BASE}/nothing.xml"), 404),
    ):
        errors = xml_of(answer, status)
        assert errors.tag == "errors"
        assert errors.findtext("error/code") == str(status)
        assert errors.findtext("error/description")


async def test_the_api_key_may_come_as_x_api_key(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    writer = await make_api_key(h, ["reports:write"])
    form = {"service_code": "open_burning", "lat": "30.02", "long": "120.02"}

    by_header = await h.client.post(f"{BASE}/requests.json", data=form, headers=writer)
    by_field = await h.client.post(
        f"{BASE}/requests.json", data={**form, "api_key": writer["X-API-Key"]}
    )
    neither = await h.client.post(f"{BASE}/requests.json", data=form)

    assert by_header.status_code == 201, by_header.text
    assert by_field.status_code == 201  # the same fire: joins the same request
    assert by_field.json()[0]["service_request_id"] == by_header.json()[0]["service_request_id"]
    assert neither.status_code == 403 and neither.json()[0]["code"] == 403

    reader = await make_api_key(h, ["incidents:read"])
    as_param = await h.client.get(f"{BASE}/requests.json", params={"api_key": reader["X-API-Key"]})
    assert as_param.status_code == 200 and len(as_param.json()) == 1


async def test_reading_requests_needs_a_key_with_incidents_read(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    writer = await make_api_key(h, ["reports:write"])
    case = await _file(h, writer, "120.02", "30.02", "张三家田里焚烧秸秆")
    for headers in ({}, writer, {"X-API-Key": "bb_not-a-key"}):
        for path in ("/requests.json", f"/requests/{case}.json"):
            answer = await h.client.get(f"{BASE}{path}", headers=headers)
            assert answer.status_code == 403, (headers, path)
            assert answer.json()[0]["code"] == 403
            assert "张三" not in answer.text


async def test_a_cell_limited_key_reads_requests_under_its_cell(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    writer = await make_api_key(h, ["reports:write"])
    west = await _file(h, writer, "120.02", "30.02", "西边")
    east = await _file(h, writer, "120.07", "30.07", "东边")
    west_reader = await make_api_key(h, ["incidents:read"], cell_code=WEST)

    listed = await h.client.get(f"{BASE}/requests.json", headers=west_reader)
    assert [r["service_request_id"] for r in listed.json()] == [west]
    other = await h.client.get(f"{BASE}/requests/{east}.json", headers=west_reader)
    assert other.status_code == 404
    east_reader = await make_api_key(h, ["incidents:read"], cell_code=EAST)
    mine = await h.client.get(f"{BASE}/requests/{east}.json", headers=east_reader)
    assert mine.json()[0]["description"] == "东边"


async def test_the_public_view_rounds_positions_and_shows_no_free_text(harness: Harness) -> None:
    h = harness
    h.settings.open311_public = True
    await load_grid(h)
    writer = await make_api_key(h, ["reports:write"])
    case = await _file(h, writer, "120.023456", "30.012345", "张三家田里焚烧秸秆")

    (public,) = (await h.client.get(f"{BASE}/requests.json")).json()
    (one,) = (await h.client.get(f"{BASE}/requests/{case}.json")).json()
    reader = await make_api_key(h, ["incidents:read"])
    (exact,) = (await h.client.get(f"{BASE}/requests.json", headers=reader)).json()

    for view in (public, one):
        assert view["service_request_id"] == case
        assert (view["long"], view["lat"]) == (120.023, 30.012)  # ~100 m
        assert view["description"] is None and view["status_notes"] is None
        assert view["agency_responsible"] == "西镇"  # the responsible body, not a person
    assert (exact["long"], exact["lat"]) == (120.023456, 30.012345)
    assert exact["description"] == "张三家田里焚烧秸秆"
    refused = await h.client.get(f"{BASE}/requests.json", headers={"X-API-Key": "bb_wrong"})
    assert refused.status_code == 403  # a key that is not valid is refused, not made public
