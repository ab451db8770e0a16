"""Who is calling and what they may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["SCOPES", "Principal", "Scope"]

Scope = Literal["features:read", "predict", "push", "models:read", "metrics", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
"""Every scope; ``admin`` implies all the others. ``push:<source>`` narrows ``push`` to one source."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        name: the API key's name, or the token's subject (``sub``) for OIDC.
        kind: ``"key"``, ``"oidc"`` or ``"anonymous"`` (auth turned off on a loopback bind).
        scopes: what it may do.
    """

    name: str
    kind: Literal["key", "oidc", "anonymous"]
    scopes: frozenset[str]

    def allows(self, scope: str, resource: str | None = None) -> bool:
        """Whether this principal holds ``scope`` (for ``push``, optionally for one ``resource``)."""
        if "admin" in self.scopes or scope in self.scopes:
            return True
        return resource is not None and f"{scope}:{resource}" in self.scopes

    @property
    def label(self) -> str:
        """``kind:name``: how logs and metrics name the caller (never a secret)."""
        return f"{self.kind}:{self.name}"


def check_scope(scope: str) -> str:
    """``scope`` if it is known (``push:<source>`` included); raises ValueError naming the valid ones."""
    base, _, resource = scope.partition(":")
    if scope in SCOPES or (base == "push" and resource):
        return scope
    raise ValueError(f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}, or push:<source>")
