"""Secrets out of URLs and messages: every URL pitstop shows (errors, logs, CLI output) goes through here.

Two forms carry secrets: the password in ``scheme://user:password@host`` and query parameters such
as ``?password=...`` (libpq, redis-py and many drivers accept both). Both are replaced by ``***``.
This module imports nothing from pitstop, so any module may use it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["redact_text", "redact_url", "url_secrets"]

MASK = "***"
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|auth|credential|api[-_]?key|access[-_]?key|private", re.I)
_USERINFO = re.compile(r"(?<=://)([^/?#\s]*)@")  # greedy: a raw '@' in a password
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match.group(1).partition(":")
    return f"{user}:{MASK}@" if colon else match.group(0)


def _mask_param(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    return f"{sep}{name}={MASK}" if value and _SECRET_PARAM.search(unquote(name)) else match.group(0)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and every secret-looking query value replaced by ``***``.

    Works on text that does not parse as a URL too (it never raises).
    """
    return _QUERY_PARAM.sub(_mask_param, _USERINFO.sub(_mask_userinfo, url))


def url_secrets(url: str) -> list[str]:
    """The secret values inside ``url`` (raw and percent-decoded), longest first, for scrubbing messages."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
        found.update(v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _SECRET_PARAM.search(k))
    except ValueError:
        pass
    for match in _USERINFO.finditer(url):
        user, colon, password = match.group(1).partition(":")
        if colon and password:
            found.add(password)
    for match in _QUERY_PARAM.finditer(url):
        _sep, name, value = match.groups()
        if value and _SECRET_PARAM.search(unquote(name)):
            found.add(value)
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if s), key=len, reverse=True)


def redact_text(text: str, *urls: str) -> str:
    """``text`` (e.g. a driver's error message) with any URL in it redacted and the secrets of ``urls`` masked."""
    text = redact_url(text)
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, MASK)
    return text
