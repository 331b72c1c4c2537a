"""A real webhook receiver on loopback for the tests, checking signatures with its own code.

The verification follows the Standard Webhooks specification directly (HMAC-SHA256 over
"{webhook-id}.{webhook-timestamp}.{body}", keyed by the base64 part of the whsec_ secret) and
shares nothing with the sender's implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BadSignature(Exception):
    pass


def verify(
    secret: str, headers: dict[str, str], body: bytes, now: float, tolerance: int = 300
) -> Any:
    """The parsed body if the webhook-* headers sign it with `secret`; else BadSignature."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        raise BadSignature("timestamp outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = headers["webhook-signature"].split(" ")
    if not any(sig.startswith("v1,") and hmac.compare_digest(sig[3:], expected) for sig in offered):
        raise BadSignature("no v1 signature matches")
    return json.loads(body)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers scripted responses (then `default`), records every request it got."""

    port: int = 0
    default: tuple[int, dict[str, str]] = (204, {})
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *responses: int | tuple[int, dict[str, str]]) -> None:
        for response in responses:
            self.script.append(response if isinstance(response, tuple) else (response, {}))

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", 0))
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        msg_id = headers.get("webhook-id", "")
        with self.lock:
            if self.in_flight.get(msg_id):
                self.overlaps.append(msg_id)
            self.in_flight[msg_id] = self.in_flight.get(msg_id, 0) + 1
            self.received.append(Received(headers, body, handler.path))
            status, extra = self.script.popleft() if self.script else self.default
        try:
            if self.delay:
                time.sleep(self.delay)
            handler.send_response(status)
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.send_header("content-length", "0")
            handler.end_headers()
        finally:
            with self.lock:
                self.in_flight[msg_id] -= 1


@contextmanager
def receiving(receiver: Receiver | None = None) -> Iterator[Receiver]:
    """Serve `receiver` on 127.0.0.1 (its port, or a free one) in a thread while in the block."""
    target = receiver or Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server naming
            target._handle(self)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # workers connect in bursts of a batch; 5 would refuse some

    server = Server(("127.0.0.1", target.port), Handler)
    server.daemon_threads = True
    target.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
