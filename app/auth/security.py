"""Password hashing (argon2), access tokens (JWT) and API key material."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "bb_"
# A hash to verify against when the username is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("burnban-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_token(subject: str, secret_key: str, now: datetime, lifetime: timedelta) -> str:
    claims = {"sub": subject, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
    return jwt.encode(claims, secret_key, algorithm=_JWT_ALGORITHM)


def token_subject(token: str, secret_key: str, now: datetime) -> str | None:
    """The user id a valid token names, if it has not expired by `now` (the service's clock)."""
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[_JWT_ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        return None
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not isinstance(expires, int | float):
        return None
    return subject if now.timestamp() < expires else None


@dataclass(frozen=True)
class NewApiKey:
    key: str
    key_hash: str
    prefix: str


def new_api_key() -> NewApiKey:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, key_hash=hash_api_key(key), prefix=key[:10])


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
