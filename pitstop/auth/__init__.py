"""Authentication and authorization: API keys with scopes and OIDC/JWT bearer tokens.

``Authenticator`` turns an ``Authorization: Bearer ...`` header into a ``Principal`` (who, which
scopes) or raises ``AuthError``; the serving layer maps routes to scopes and answers 401/403.
"""

from pitstop.auth.principal import SCOPES, Principal, Scope

__all__ = ["SCOPES", "Principal", "Scope"]
