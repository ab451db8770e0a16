"""Build a worker's Authenticator from the ``auth`` settings and the registry."""

from __future__ import annotations

from pitstop.auth.authenticator import Authenticator
from pitstop.auth.oidc import OidcVerifier
from pitstop.registry.base import ApiKeyStore
from pitstop.settings import AuthSettings

__all__ = ["build_authenticator"]


def build_authenticator(settings: AuthSettings, keys: ApiKeyStore) -> Authenticator | None:
    """The authenticator for ``settings``, or None when auth is turned off.

    API keys are always accepted (an empty key table accepts none); OIDC tokens too when an
    issuer is configured.

    Raises:
        ConfigError: the OIDC settings are unsafe (e.g. a symmetric algorithm).
    """
    if not settings.enabled:
        return None
    oidc = None
    if settings.oidc_issuer:
        assert settings.oidc_audience is not None  # the settings validator requires it
        oidc = OidcVerifier(settings.oidc_issuer, settings.oidc_audience, jwks_url=settings.oidc_jwks_url,
                            scopes_claim=settings.oidc_scopes_claim, scope_map=settings.oidc_scope_map,
                            algorithms=tuple(settings.oidc_algorithms), leeway_seconds=settings.oidc_leeway_seconds)
    return Authenticator(keys.api_keys, keys.touch_api_keys, oidc=oidc, refresh_seconds=settings.key_refresh_seconds)
