"""Delivering events: signed per the specification, filtered, retried, given up, disabled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from app.webhooks.claims import claim_due
from app.webhooks.fanout import fan_out
from app.webhooks.worker import MAX_ATTEMPTS, RETRY_DELAYS, client, dispatch_once
from tests.conftest import Harness
from tests.factories import EAST, WEST
from tests.webhooks.receiver import BadSignature, Receiver, receiving, verify
from tests.webhooks.support import OPTIONS, Reporter, advance, deliveries, drain, subscribe


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with client() as http_client:
        yield http_client


async def test_events_arrive_signed_as_the_specification_says(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url())
        report = await Reporter(h).report()
        counts = await drain(h, http)
    assert counts.succeeded == 2 and counts.failed == 0
    now = h.clock.now().timestamp()
    bodies = [verify(hook["secret"], r.headers, r.body, now) for r in receiver.received]
    assert [b["type"] for b in bodies] == ["incident.created", "report.created"]
    created, filed = bodies
    assert created["data"]["case_number"] == report["incident"]["case_number"]
    assert created["data"]["cell"]["village"]["code"] == report["cell"]["village"]["code"]
    assert filed["data"]["id"] == report["id"]
    assert created["timestamp"].endswith("Z")
    first = receiver.received[0]
    assert first.headers["webhook-id"].startswith("evt_")
    assert first.headers["webhook-timestamp"] == str(int(now))
    assert first.headers["content-type"] == "application/json"
    assert first.path == "/hook"
    with pytest.raises(BadSignature):  # a different secret does not verify
        verify("whsec_" + "A" * 32, first.headers, first.body, now)
    with pytest.raises(BadSignature):  # nor does a changed body
        verify(hook["secret"], first.headers, first.body.replace(b"}", b" }", 1), now)

    listed = await deliveries(h, hook, key)
    assert {d["status"] for d in listed} == {"succeeded"}
    assert {d["webhook_id"] for d in listed} == set(receiver.ids())
    assert all(d["attempts"] == 1 and d["history"][0]["status_code"] == 204 for d in listed)


async def test_only_subscribed_types_and_cells_are_sent(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    reporter = Reporter(h)
    await reporter.ready()
    with receiving() as receiver:
        await subscribe(h, receiver.url("/created"), ["incident.created"])
        await subscribe(h, receiver.url("/east"), cell=EAST)
        await subscribe(h, receiver.url("/west"), cell=WEST)
        await reporter.report(120.02, 30.02)  # in the west township
        await drain(h, http)
    by_path: dict[str, list[str]] = {}
    for r in receiver.received:
        by_path.setdefault(r.path, []).append(r.json()["type"])
    assert by_path == {
        "/created": ["incident.created"],
        "/west": ["incident.created", "report.created"],
    }


async def test_failures_are_retried_on_the_schedule_with_the_same_id_and_body(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        receiver.answer(500, 502)
        await Reporter(h).report()
        counts = await drain(h, http)
        assert counts.retrying == 1 and len(receiver.received) == 1
        advance(h, seconds=4)
        assert (await drain(h, http)).claimed == 0  # not before 5 s
        advance(h, seconds=1)
        assert (await drain(h, http)).retrying == 1
        advance(h, minutes=4, seconds=59)
        assert (await drain(h, http)).claimed == 0  # then 5 min
        advance(h, seconds=1)
        assert (await drain(h, http)).succeeded == 1
    assert len(set(receiver.ids())) == 1
    assert len({r.body for r in receiver.received}) == 1
    timestamps = [int(r.headers["webhook-timestamp"]) for r in receiver.received]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == 3
    for r, ts in zip(receiver.received, timestamps, strict=True):
        verify(hook["secret"], r.headers, r.body, ts)  # each send is signed for its moment
    (delivery,) = await deliveries(h, hook, key)
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["history"]] == [500, 502, 204]


async def test_a_receiver_down_for_an_hour_gets_everything_in_order_afterwards(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    reporter = Reporter(h)
    with receiving() as first:
        port = first.port
        hook, key = await subscribe(h, first.url(), ["incident.created", "incident.updated"])
    # The receiver is down now: connections are refused.
    await reporter.report(120.02, 30.02)
    await reporter.report(120.0201, 30.0201)  # joins the same incident: incident.updated
    await reporter.report(120.07, 30.07)  # another incident elsewhere
    for _ in range(4):
        await drain(h, http)
        advance(h, minutes=20)
    pending = await deliveries(h, hook, key)
    assert len(pending) == 3 and {d["status"] for d in pending} == {"pending"}
    assert any("ConnectError" in (d["last_error"] or "") for d in pending)
    with receiving(Receiver(port=port)) as back:
        advance(h, hours=2)
        for _ in range(4):
            await drain(h, http)
    per_incident: dict[str, list[str]] = {}
    for r in back.received:
        per_incident.setdefault(r.json()["data"]["id"], []).append(r.json()["type"])
    assert sorted(per_incident.values()) == [  # in order per incident
        ["incident.created"],
        ["incident.created", "incident.updated"],
    ]
    assert {d["status"] for d in await deliveries(h, hook, key)} == {"succeeded"}


async def test_an_incidents_later_event_waits_for_the_earlier_one(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    reporter = Reporter(h)
    with receiving() as receiver:
        await subscribe(h, receiver.url(), ["incident.created", "incident.updated"])
        receiver.answer(503)
        await reporter.report(120.02, 30.02)
        await reporter.report(120.0201, 30.0201)
        await drain(h, http)
        assert [r.json()["type"] for r in receiver.received] == ["incident.created"]
        advance(h, seconds=5)
        await drain(h, http)
    assert [r.json()["type"] for r in receiver.received] == [
        "incident.created",
        "incident.created",
        "incident.updated",
    ]


async def test_retry_after_is_honoured(harness: Harness, http: httpx.AsyncClient) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        receiver.answer((429, {"Retry-After": "120"}))
        await Reporter(h).report()
        await drain(h, http)
        (delivery,) = await deliveries(h, hook, key)
        expected = h.clock.now() + timedelta(seconds=120)
        assert delivery["next_attempt_at"] == expected.isoformat().replace("+00:00", "Z")
        advance(h, seconds=60)  # past the 5 s the schedule alone would wait
        assert (await drain(h, http)).claimed == 0
        advance(h, seconds=60)
        assert (await drain(h, http)).succeeded == 1


async def test_after_the_last_try_the_delivery_fails_and_can_be_retried_by_hand(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving(Receiver(default=(500, {}))) as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        await Reporter(h).report()
        await drain(h, http)
        for delay in RETRY_DELAYS:
            h.clock.advance(delay)
            await drain(h, http)
        assert len(receiver.received) == MAX_ATTEMPTS == 7
        (delivery,) = await deliveries(h, hook, key)
        assert delivery["status"] == "failed" and delivery["last_status_code"] == 500
        assert len(delivery["history"]) == 7 and delivery["next_attempt_at"] is None
        advance(h, days=2)
        assert (await drain(h, http)).claimed == 0  # failed is final

        receiver.default = (200, {})
        path = f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry"
        retried = await h.client.post(path, headers=key)
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        assert (await drain(h, http)).succeeded == 1
    (delivery,) = await deliveries(h, hook, key)
    assert delivery["status"] == "succeeded" and len(delivery["history"]) == 8


async def test_410_gone_disables_the_subscription(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    reporter = Reporter(h)
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        receiver.answer(410)
        await reporter.report(120.02, 30.02)
        await drain(h, http)
        await reporter.report(120.07, 30.07)
        advance(h, hours=1)
        await drain(h, http)
    assert len(receiver.received) == 1
    shown = (await h.client.get(f"/api/v1/webhooks/{hook['id']}", headers=key)).json()
    assert shown["disabled_at"] is not None and "410" in shown["disabled_reason"]
    (delivery,) = await deliveries(h, hook, key)
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 410


async def test_a_worker_killed_between_claim_and_send_is_covered_by_another(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        await Reporter(h).report()
        first = await dispatch_once(h.db, h.clock, http, OPTIONS)  # fans out, sends: fine
        assert first.succeeded == 1
        await Reporter(h).report(120.07, 30.07)
        await fan_out(h.db, h.clock.now(), 50)
        taken = await claim_due(h.db, h.clock.now(), 10, OPTIONS.lease)
        assert len(taken) == 1  # ...and this worker dies here, before sending
        assert (await drain(h, http)).claimed == 0  # the lease keeps others off
        h.clock.advance(OPTIONS.lease + timedelta(seconds=1))
        assert (await drain(h, http)).succeeded == 1
    assert len(receiver.received) == 2
    listed = await deliveries(h, hook, key)
    assert [d["status"] for d in listed] == ["succeeded", "succeeded"]
    assert listed[0]["attempts"] == 2  # the lost claim counts as an attempt


async def test_a_target_that_turns_private_is_refused_at_send_time(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        await Reporter(h).report()
        counts = await drain(h, http, replace(OPTIONS, allow_private=False))
    assert counts.retrying == 1 and receiver.received == []
    (delivery,) = await deliveries(h, hook, key)
    assert delivery["last_error"].startswith("refused:")


async def test_a_deleted_subscription_gets_nothing_more(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        await Reporter(h).report()
        await h.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=key)
        await drain(h, http)
    assert receiver.received == []


async def test_events_nobody_subscribed_to_keep_the_worker_going(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    """A round that read events but delivered none is not idle: the worker goes straight on
    (instead of waiting its poll interval per batch while a subscribed event waits behind)."""
    h = harness
    with receiving() as receiver:
        await subscribe(h, receiver.url(), ["incident.updated"])
        reporter = Reporter(h)
        for i in range(3):  # incident.created and report.created each: nobody wants them
            await reporter.report(120.01 + 0.03 * i, 30.02)
        options = replace(OPTIONS, batch=4)
        first = await dispatch_once(h.db, h.clock, http, options)
        assert (first.scanned, first.fanned_out, first.busy) == (4, 0, True)
        await drain(h, http, options)
        await reporter.report(120.0101, 30.02)  # joins the first incident: incident.updated
        assert (await drain(h, http, options)).succeeded == 1
    assert [r.json()["type"] for r in receiver.received] == ["incident.updated"]
