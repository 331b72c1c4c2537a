"""Standard Webhooks signing: secrets, message ids and the three webhook-* headers."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # the specification asks for 24 to 64 random bytes


def new_secret() -> str:
    """A signing secret in the specification's form: whsec_ + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(event_id: int) -> str:
    """The webhook-id of an event: the same for every retry and every subscriber."""
    return f"evt_{event_id}"


def headers(secret: str, msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature for one send of `body`."""
    signature: str = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
