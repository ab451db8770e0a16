"""Create, list and revoke API keys in the registry (the secret is returned once and never stored)."""

from __future__ import annotations

from datetime import UTC, datetime

from pitstop.auth.api_keys import check_key_name, new_api_key
from pitstop.auth.principal import check_scope
from pitstop.errors import ConfigError, NotRegisteredError
from pitstop.registry.base import ApiKeyRecord, Registry

__all__ = ["ApiKeys", "CreatedKey"]


class CreatedKey:
    """A new key's record and its secret (give the secret to the client now; it cannot be shown again)."""

    def __init__(self, record: ApiKeyRecord, secret: str) -> None:
        self.record = record
        self.secret = secret

    def __repr__(self) -> str:  # never print the secret by accident
        return f"CreatedKey(name={self.record.name!r}, key_id={self.record.key_id!r}, secret='***')"


class ApiKeys:
    """The API keys of one project, stored in its registry (hash and prefix only)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def create(self, name: str, scopes: list[str]) -> CreatedKey:
        """A new key named ``name`` with ``scopes``.

        Raises:
            ConfigError: the name or a scope is invalid, or no scope is given.
            RegistryError: an active key already has this name (revoke it first, or pick another name).
        """
        try:
            check_key_name(name)
            checked = tuple(dict.fromkeys(check_scope(s) for s in scopes))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not checked:
            raise ConfigError("give at least one scope (--scope), e.g. --scope predict")
        key = new_api_key()
        record = ApiKeyRecord(key.key_id, name, checked, key.digest, datetime.now(UTC))
        self._registry.add_api_key(record)
        return CreatedKey(record, key.secret)

    def list(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys by creation time (active ones only unless ``include_revoked``)."""
        keys = sorted(self._registry.api_keys(), key=lambda k: k.created_at)
        return keys if include_revoked else [k for k in keys if k.active]

    def revoke(self, name: str) -> int:
        """Revoke the active key named ``name`` (or whose id is ``name``); returns how many were revoked.

        Raises:
            NotRegisteredError: no active key has that name or id.
        """
        revoked = self._registry.revoke_api_key(name, datetime.now(UTC))
        if revoked == 0:
            raise NotRegisteredError(f"no active API key named {name!r}; see `pitstop auth list`")
        return revoked
