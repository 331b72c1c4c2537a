"""Webhook secrets at rest: sealed with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived
from BURNBAN_DATA_KEY, so a copy of the database alone signs nothing.

Rotation: set the new BURNBAN_DATA_KEY and the old one in BURNBAN_DATA_KEY_PREVIOUS, restart,
run `burnban db rotate-data-key` (every secret sealed again under the new key), then drop the
old key. Until then secrets sealed under either key open.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings

_PURPOSE = b"burnban webhook secrets v1"

__all__ = ["InvalidToken", "SecretBox"]


def _fernet(data_key: str) -> Fernet:
    """The Fernet key for webhook secrets, derived from the operator's data key (HKDF-SHA256),
    so that the setting may be any long random string and serve other purposes later."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        data_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    """Seals with the current data key; opens with it or any previous one."""

    def __init__(self, key: str, previous: Sequence[str] = ()) -> None:
        self._keys = MultiFernet([_fernet(k) for k in (key, *previous)])

    @classmethod
    def of(cls, settings: Settings) -> SecretBox:
        return cls(settings.data_key, settings.previous_data_keys)

    def seal(self, secret: str) -> str:
        return self._keys.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret; InvalidToken if no key this box holds sealed it."""
        return self._keys.decrypt(sealed.encode()).decode()

    def reseal(self, sealed: str) -> str:
        """The same secret sealed under the current key."""
        return self._keys.rotate(sealed.encode()).decode()
