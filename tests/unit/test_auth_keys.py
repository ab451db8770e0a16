"""API keys and the authenticator: format, hashing, scopes, revocation bound, no secret in errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from pitstop.auth.api_keys import ApiKeyRecord, digest_of, new_api_key, parse_api_key
from pitstop.auth.authenticator import Authenticator
from pitstop.auth.principal import Principal, check_scope
from pitstop.errors import AuthError


def record(name: str, scopes: tuple[str, ...]) -> tuple[str, ApiKeyRecord]:
    key = new_api_key()
    return key.secret, ApiKeyRecord(key.key_id, name, scopes, key.digest, datetime.now(UTC))


def test_keys_are_random_and_stored_only_as_a_digest() -> None:
    a, b = new_api_key(), new_api_key()
    assert a.secret != b.secret and a.key_id != b.key_id
    key_id, secret_part = parse_api_key(a.secret) or ("", "")
    assert key_id == a.key_id and a.digest == digest_of(secret_part)
    assert secret_part not in a.digest and len(secret_part) == 43
    assert parse_api_key(a.secret + "x") is None and parse_api_key("psk_zz_" + secret_part) is None


def test_scopes() -> None:
    reader = Principal("r", "key", frozenset({"features:read"}))
    assert reader.allows("features:read") and not reader.allows("predict")
    assert Principal("a", "key", frozenset({"admin"})).allows("push", "speed_push")
    one_source = Principal("p", "key", frozenset({"push:speed_push"}))
    assert one_source.allows("push", "speed_push") and not one_source.allows("push", "other")
    assert check_scope("push:speed_push") == "push:speed_push"
    with pytest.raises(ValueError, match="unknown scope 'write'"):
        check_scope("write")


def test_authenticator_checks_keys_and_sees_revocation_on_refresh() -> None:
    secret, rec = record("billing-app", ("predict",))
    table = [rec]
    used: dict[str, datetime] = {}

    def touch(times: Mapping[str, datetime]) -> None:
        used.update(times)

    auth = Authenticator(lambda: list(table), touch, refresh_seconds=3600)
    auth.start()
    try:
        principal = auth.authenticate(f"Bearer {secret}")
        assert principal == Principal("billing-app", "key", frozenset({"predict"}))
        for bad in (None, "", "Basic abc", "Bearer ", f"Bearer {secret[:-1]}A", "Bearer psk_nope"):
            with pytest.raises(AuthError) as info:
                auth.authenticate(bad)
            assert info.value.status == 401 and secret not in str(info.value)
        table[0] = ApiKeyRecord(rec.key_id, rec.name, rec.scopes, rec.digest, rec.created_at,
                                revoked_at=datetime.now(UTC))
        assert auth.authenticate(f"Bearer {secret}").name == "billing-app"  # until the next refresh
        auth.refresh()
        with pytest.raises(AuthError, match="invalid or revoked"):
            auth.authenticate(f"Bearer {secret}")
        assert rec.key_id in used  # last-used was written back on refresh
    finally:
        auth.stop()


def test_a_jwt_without_an_issuer_configured_is_refused() -> None:
    auth = Authenticator(lambda: [], None)
    auth.start()
    with pytest.raises(AuthError, match="invalid API key"):
        auth.authenticate("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")
