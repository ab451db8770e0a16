"""API keys: random secrets shown once, stored as a SHA-256 digest beside a non-secret id.

Format: ``psk_<id>_<secret>``, where ``id`` is 12 hex characters (how logs, ``pitstop auth list`` and
the registry name a key) and ``secret`` is 32 random bytes in URL-safe base64. The registry keeps
the id and ``sha256(secret)``, never the secret. A fast hash is right here: the secret carries 256
bits of entropy, so there is nothing to brute-force (a slow KDF protects low-entropy passwords,
and would cost milliseconds per request); digests are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from pitstop.registry.base import ApiKeyRecord

__all__ = ["ApiKeyRecord", "NewApiKey", "digest_of", "matches", "new_api_key", "parse_api_key"]

PREFIX = "psk_"
_KEY = re.compile(r"^psk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


@dataclass(frozen=True)
class NewApiKey:
    """A freshly made key: ``secret`` is the full token to give the client, shown once."""

    key_id: str
    secret: str
    digest: str


def check_key_name(name: str) -> str:
    """``name`` when it is a valid key name (letters, digits, ``_.@-``, at most 100), else ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"invalid key name {name[:40]!r}: use letters, digits and _.@- (at most 100 characters)")
    return name


def digest_of(secret_part: str) -> str:
    """The stored digest of a key's secret part."""
    return hashlib.sha256(secret_part.encode()).hexdigest()


def new_api_key() -> NewApiKey:
    """A new random key (its ``secret`` is the whole ``psk_...`` token)."""
    key_id = secrets.token_hex(6)
    secret_part = secrets.token_urlsafe(32)
    return NewApiKey(key_id, f"{PREFIX}{key_id}_{secret_part}", digest_of(secret_part))


def parse_api_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret part)`` of a well-formed pitstop key, else None."""
    match = _KEY.match(token)
    return (match.group(1), match.group(2)) if match else None


def matches(record: ApiKeyRecord, secret_part: str) -> bool:
    """Whether ``secret_part`` is this record's secret (constant-time comparison of digests)."""
    return hmac.compare_digest(record.digest, digest_of(secret_part))
