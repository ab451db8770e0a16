"""OIDC / JWT bearer tokens: signature checked against the issuer's JWKS with PyJWT.

The JWKS is fetched once and cached; a token signed with a key id the cache does not know triggers
one refresh (key rotation), rate-limited by PyJWT's cooldown. Verified tokens are cached per
process until shortly before they expire, so the signature is checked once per token, not once
per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from pitstop.auth.principal import SCOPES, Principal
from pitstop.errors import AuthError, ConfigError

__all__ = ["OidcVerifier"]

_CACHE_SIZE = 10_000
_SAFE_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OidcVerifier:
    """Checks bearer JWTs from one issuer.

    Args:
        issuer: the expected ``iss``.
        audience: the expected ``aud`` (one of the token's audiences).
        jwks_url: where the issuer publishes its keys; default: read ``jwks_uri`` from
            ``<issuer>/.well-known/openid-configuration``.
        scopes_claim: the claim that carries scopes or roles (a space-separated string or a list).
        scope_map: claim values -> pitstop scopes (e.g. ``{"ml-engineer": ["predict", "features:read"]}``);
            claim values that are pitstop scopes themselves always count.
        algorithms: accepted signature algorithms (asymmetric only).
        leeway_seconds: clock skew allowed on ``exp``, ``nbf`` and ``iat``.

    Raises:
        ConfigError: an unsafe algorithm is configured.
    """

    def __init__(self, issuer: str, audience: str, *, jwks_url: str | None = None, scopes_claim: str = "scope",
                 scope_map: dict[str, list[str]] | None = None, algorithms: tuple[str, ...] = ("RS256", "ES256"),
                 leeway_seconds: float = 30.0, timeout_seconds: float = 5.0) -> None:
        unsafe = [a for a in algorithms if a not in _SAFE_ALGORITHMS]
        if unsafe:
            raise ConfigError(f"auth.oidc_algorithms: {', '.join(unsafe)} not allowed; use asymmetric algorithms "
                              f"({', '.join(_SAFE_ALGORITHMS)})")
        self.issuer = issuer
        self.audience = audience
        self.scopes_claim = scopes_claim
        self.scope_map = {k: list(v) for k, v in (scope_map or {}).items()}
        self.algorithms = list(algorithms)
        self.leeway = leeway_seconds
        self._timeout = timeout_seconds
        self._jwks_url = jwks_url
        self._client: Any = None
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def _jwks(self) -> Any:
        if self._client is None:
            import jwt

            with self._lock:
                if self._client is None:
                    url = self._jwks_url or self._discover()
                    self._client = jwt.PyJWKClient(url, lifespan=300, timeout=self._timeout, cooldown_duration=10)
        return self._client

    def _discover(self) -> str:
        import json
        import urllib.request

        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310 - configured https URL
                return str(json.load(response)["jwks_uri"])
        except (OSError, ValueError, KeyError) as exc:
            raise AuthError(401, f"cannot read the identity provider's configuration at {url}: {exc}") from None

    def is_cached(self, token: str) -> bool:
        """Whether ``token`` was verified recently (so checking it again needs no network)."""
        hit = self._verified.get(token)
        return hit is not None and hit[1] > time.time()

    def verify(self, token: str) -> Principal:
        """The principal a valid token stands for.

        Raises:
            AuthError: 401 when the token is malformed, expired, not yet valid, signed by an unknown
                key, or from another issuer or audience.
        """
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        import jwt

        try:
            key = self._jwks().get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=self.algorithms, audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "the bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError(401, "the bearer token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, f"the bearer token was not issued by {self.issuer}") from None
        except jwt.InvalidAudienceError:
            raise AuthError(401, f"the bearer token is not meant for audience {self.audience!r}") from None
        except jwt.PyJWKClientError as exc:
            raise AuthError(401, f"the bearer token's signing key is unknown: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"invalid bearer token: {type(exc).__name__}") from None
        principal = Principal(str(claims.get("sub") or claims.get("client_id") or "unknown"), "oidc",
                              frozenset(self._scopes(claims.get(self.scopes_claim))))
        expires = min(float(claims["exp"]), now + 300)
        self._verified[token] = (principal, expires)
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _scopes(self, value: Any) -> set[str]:
        items = value.split() if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []
        scopes: set[str] = set()
        for item in map(str, items):
            if item in SCOPES or item.startswith("push:"):
                scopes.add(item)
            scopes.update(self.scope_map.get(item, []))
        return scopes
