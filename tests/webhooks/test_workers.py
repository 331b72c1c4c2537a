"""Several workers on one outbox, an idle worker told of new events, and the worker inside
`burnban serve` on SQLite."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.auth.schemas import ApiKeyCreate
from app.clock import FrozenClock
from app.config import DEV_DATA_KEY
from app.db import Database, create_engine
from app.main import create_app
from app.outbox import service as outbox
from app.outbox.notifications import OutboxNotifications
from app.webhooks import service as webhook_service
from app.webhooks.schemas import WebhookIn
from app.webhooks.sealing import SecretBox
from app.webhooks.worker import client, dispatch_once, run
from tests.conftest import settings_for
from tests.factories import NOW
from tests.live import running
from tests.webhooks.receiver import Receiver, receiving, verify
from tests.webhooks.support import OPTIONS

EVENTS = 120
INCIDENTS = 30


async def _subscribe(db: Database, url: str) -> str:
    async with db.write() as session:
        row, _ = await auth_service.create_api_key(
            session, ApiKeyCreate(name="hook", scopes=["webhooks:manage"]), None, NOW
        )
        owner = Principal(kind="api_key", id=row.id, name=row.name)
        data = WebhookIn(url=url, events=["incident.updated"])
        box = SecretBox(DEV_DATA_KEY)
        created = await webhook_service.subscribe(session, owner, data, True, box, NOW)
    return created.secret


async def _emit(db: Database, count: int) -> None:
    for i in range(count):
        async with db.write() as session:
            incident = f"incident{i % INCIDENTS:03d}"
            payload = {"id": incident, "seq": i}
            await outbox.emit(
                session, "incident.updated", payload, NOW, incident_id=incident, district_code="1"
            )


async def test_two_workers_never_send_one_event_twice_at_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_database_url, tmp_path)
    dbs = [Database(create_engine(settings.url, settings)) for _ in range(3)]
    clock = FrozenClock(NOW)
    options = replace(OPTIONS, batch=10)
    try:
        with receiving(Receiver(delay=0.005)) as receiver:
            secret = await _subscribe(dbs[0], receiver.url())
            writer = asyncio.create_task(_emit(dbs[0], EVENTS))

            async def work(db: Database) -> int:
                sent = 0
                async with client() as http:
                    idle = 0
                    while idle < 10:  # quiet for 10 polls after the writer is done
                        counts = await dispatch_once(db, clock, http, options)
                        sent += counts.succeeded
                        done = writer.done() and not counts.busy
                        idle = idle + 1 if done else 0
                        if not counts.busy:  # as the worker's loop does, at a shorter poll
                            await asyncio.sleep(0.02)
                return sent

            sent = await asyncio.gather(work(dbs[1]), work(dbs[2]))
            await writer
    finally:
        for db in dbs:
            await db.dispose()
    ids = receiver.ids()
    assert len(ids) == EVENTS and len(set(ids)) == EVENTS  # each event once, none lost
    assert receiver.overlaps == []
    assert sum(sent) == EVENTS and all(n > 0 for n in sent)  # both workers took a share
    seqs: dict[str, list[int]] = {}
    for r in receiver.received:
        body = verify(secret, r.headers, r.body, NOW.timestamp())
        seqs.setdefault(body["data"]["id"], []).append(body["data"]["seq"])
    assert all(s == sorted(s) for s in seqs.values())  # in order per incident


class _Watched(OutboxNotifications):
    """Counts the worker's waits, so a test knows when it is idle for its whole poll."""

    def __init__(self, db: Database) -> None:
        super().__init__(db.engine)
        self.waits = 0

    async def wait(self, stop: asyncio.Event, poll_seconds: float) -> None:
        self.waits += 1
        await super().wait(stop, poll_seconds)


async def test_an_idle_worker_sends_a_new_event_when_it_commits(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL notifies the waiting worker of the commit: an hour's poll or not, the event
    goes out at once. SQLite has no notifications: its worker finds the event at its poll."""
    settings = settings_for(fresh_database_url, tmp_path)
    db = Database(create_engine(settings.url, settings))
    postgres = db.dialect == "postgresql"
    options = replace(OPTIONS, poll_seconds=3600 if postgres else 0.05)
    notifications, stop = _Watched(db), asyncio.Event()
    try:
        with receiving() as receiver:
            await _subscribe(db, receiver.url())
            worker = asyncio.create_task(run(db, FrozenClock(NOW), options, stop, notifications))

            async def idle() -> None:
                # The first wait returns at once (it started listening: events may have come
                # before); the second is the idle worker's.
                while notifications.waits < 2:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(idle(), timeout=30)
            assert notifications.listening is postgres
            await _emit(db, 1)
            deadline = time.monotonic() + 30
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(worker, timeout=30)
    finally:
        await db.dispose()
    assert [r.json()["data"] for r in receiver.received] == [{"id": "incident000", "seq": 0}]
    assert not notifications.listening  # the worker closed its connection when it stopped


async def test_a_worker_that_cannot_listen_polls_and_says_so_once() -> None:
    """With no PostgreSQL to LISTEN on, each wait is the whole poll; the worker says so once
    and tries again at every wait."""
    engine = create_async_engine("postgresql+asyncpg://burnban@127.0.0.1:1/nowhere")
    notifications, stop = OutboxNotifications(engine), asyncio.Event()
    try:
        with capture_logs() as logs:
            for _ in range(3):
                await notifications.wait(stop, 0.01)
    finally:
        await engine.dispose()
    assert not notifications.listening
    assert [entry["event"] for entry in logs] == ["outbox_listen_failed"]


def test_serve_on_sqlite_delivers_in_process(fresh_database_url: str, tmp_path: Path) -> None:
    """`burnban serve` on the embedded database needs no separate worker process."""
    settings = settings_for(fresh_database_url, tmp_path)
    settings.webhook_allow_private = True
    assert settings.worker_in_process == settings.is_sqlite
    settings.run_worker_in_process = True
    app = create_app(settings)
    now = datetime.now(UTC)
    with receiving() as receiver, running(app) as base:

        async def scenario() -> None:
            db = Database(create_engine(settings.url, settings))
            try:
                await _subscribe(db, receiver.url())
                async with db.write() as session:
                    await outbox.emit(
                        session, "incident.updated", {"id": "x"}, now, incident_id="x"
                    )
            finally:
                await db.dispose()

        asyncio.run(scenario())
        deadline = time.monotonic() + 15
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{base}/healthz").status_code == 200
    assert [r.json()["data"] for r in receiver.received] == [{"id": "x"}]
