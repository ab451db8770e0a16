"""Turn an ``Authorization`` header into a Principal, with no registry I/O on the request path.

API keys are checked against a per-process snapshot of the registry's key table, which a
background thread reloads every ``refresh_seconds``: a new key works, and a revoked key stops
working, within that bound in every worker. The same thread writes the keys' last-used times back
(at most once per refresh), so a request never waits for the registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pitstop.auth.api_keys import PREFIX, ApiKeyRecord, matches, parse_api_key
from pitstop.auth.oidc import OidcVerifier
from pitstop.auth.principal import Principal
from pitstop.errors import AuthError, PitstopError
from pitstop.log import get_logger

__all__ = ["Authenticator"]

log = get_logger(__name__)

LoadKeys = Callable[[], list[ApiKeyRecord]]
TouchKeys = Callable[[Mapping[str, datetime]], None]


class Authenticator:
    """Checks bearer credentials: pitstop API keys and, when configured, OIDC JWTs.

    Args:
        load_keys: returns every key record (the registry's ``api_keys``); None disables keys.
        touch_keys: records last-used times (key id -> time).
        oidc: the JWT verifier, or None when no issuer is configured.
        refresh_seconds: how often the key snapshot is reloaded (the revocation bound).
    """

    def __init__(self, load_keys: LoadKeys | None, touch_keys: TouchKeys | None = None, *,
                 oidc: OidcVerifier | None = None, refresh_seconds: float = 5.0) -> None:
        self._load = load_keys
        self._touch = touch_keys
        self.oidc = oidc
        self.refresh_seconds = refresh_seconds
        self._keys: dict[str, ApiKeyRecord] = {}
        self._used: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the keys once (so the first request is answered correctly), then keep them fresh."""
        if self._load is None:
            self.loaded.set()
            return
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="pitstop-auth-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._flush_used()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def refresh(self) -> None:
        """Reload the key snapshot and write back last-used times; failures keep the old snapshot."""
        assert self._load is not None
        try:
            self._keys = {k.key_id: k for k in self._load() if k.active}
            self.loaded.set()
        except PitstopError as exc:
            log.warning("could not reload API keys (keeping the previous %d): %s", len(self._keys), exc)
        except Exception:  # the refresher must outlive any single failure
            log.exception("API key reload failed")
        self._flush_used()

    def _flush_used(self) -> None:
        if not self._used or self._touch is None:
            return
        used, self._used = self._used, {}
        try:
            self._touch(used)
        except Exception as exc:  # last-used is informational: never fail a refresh on it
            log.warning("could not record API key use: %s", exc)

    # --- request path ---------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an ``Authorization`` header value.

        Raises:
            AuthError: 401 with a reason that never quotes the credential.
        """
        if not authorization:
            raise AuthError(401, "missing credentials: send 'Authorization: Bearer <API key or token>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, "unsupported credentials: send 'Authorization: Bearer <API key or token>'")
        if token.startswith(PREFIX):
            return self._api_key(token)
        if self.oidc is not None:
            return self.oidc.verify(token)
        raise AuthError(401, "invalid API key" if self._load is not None else "no credentials are accepted here")

    def _api_key(self, token: str) -> Principal:
        parsed = parse_api_key(token)
        record = self._keys.get(parsed[0]) if parsed else None
        if parsed is None or record is None or not matches(record, parsed[1]):
            raise AuthError(401, "invalid or revoked API key")
        self._used[record.key_id] = datetime.fromtimestamp(time.time(), UTC)
        return Principal(record.name, "key", frozenset(record.scopes))
