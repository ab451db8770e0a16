"""What authentication adds to one request, measured in-process (issue 11).

    .venv/bin/python bench/auth_overhead.py

The end-to-end figures of bench/serve.py (auth off vs API key vs JWT, separate servers) move by
more than the cost being measured from one server start to the next (how the kernel spreads 8 or
16 connections over 2 workers differs per start). This isolates the cost: the real
``AuthMiddleware`` in front of an ASGI app that answers at once, driven on uvloop with the headers
a client sends, in interleaved rounds:

  * auth off (``app.state.auth = None``: the anonymous principal, the per-principal counter);
  * an API key (parse, dict lookup, sha256, constant-time compare, last-used stamp);
  * an OIDC JWT (RS256, verified once, then answered from the per-worker token cache);
  * an OIDC JWT never seen before: the full signature check (keys cached), for reference.

Prints the median microseconds per request of each, and the difference against auth off.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvloop
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))
from pitstop.auth.api_keys import new_api_key  # noqa: E402
from pitstop.auth.authenticator import Authenticator  # noqa: E402
from pitstop.auth.oidc import OidcVerifier  # noqa: E402
from pitstop.registry.base import ApiKeyRecord  # noqa: E402
from pitstop.serving.auth_middleware import AuthMiddleware  # noqa: E402
from tests.support.jwks import LocalIssuer  # noqa: E402

ROUNDS, CALLS, WARMUP = 5, 20_000, 1000


async def _ok(scope: dict, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: dict) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"refused: {message}")


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


def _scope(app: Any, authorization: str | None) -> dict:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    return {"type": "http", "method": "POST", "path": "/features", "headers": headers, "app": app}


async def per_request_us(middleware: AuthMiddleware, app: Any, authorization: str | None, calls: int) -> float:
    for _ in range(WARMUP):
        await middleware(_scope(app, authorization), _receive, _send)
    t0 = time.perf_counter()
    for _ in range(calls):
        await middleware(_scope(app, authorization), _receive, _send)
    return 1e6 * (time.perf_counter() - t0) / calls


def fresh_tokens(issuer: LocalIssuer, n: int) -> list[str]:
    return [issuer.token(scope="features:read", jti=str(i)) for i in range(n)]


async def main() -> None:
    key = new_api_key()
    record = ApiKeyRecord(key.key_id, "bench", ("features:read",), key.digest, datetime.now(UTC))
    issuer = LocalIssuer()
    oidc = OidcVerifier(issuer.url, "pitstop", jwks_url=issuer.jwks_url)
    authenticator = Authenticator(lambda: [record], lambda used: None, oidc=oidc, refresh_seconds=3600)
    authenticator.start()
    token = issuer.token(scope="features:read", expires_in=3600)
    middleware = AuthMiddleware(_ok)
    off = SimpleNamespace(state=SimpleNamespace(auth=None))
    on = SimpleNamespace(state=SimpleNamespace(auth=authenticator))
    cases = {"auth off": (off, None), "API key": (on, f"Bearer {key.secret}"),
             "OIDC JWT (cached)": (on, f"Bearer {token}")}
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, (app, header) in cases.items():
            results[name].append(await per_request_us(middleware, app, header, CALLS))
    # an unseen token each time: the full RS256 verification (the JWKS is cached after the first)
    tokens = fresh_tokens(issuer, 2000)
    authenticator.authenticate(f"Bearer {tokens[0]}")
    t0 = time.perf_counter()
    for t in tokens[1:]:
        authenticator.authenticate(f"Bearer {t}")
    fresh_us = 1e6 * (time.perf_counter() - t0) / (len(tokens) - 1)
    authenticator.stop()
    issuer.close()

    base = statistics.median(results["auth off"])
    table = Table(title=f"Auth middleware per request (uvloop, median of {ROUNDS} interleaved rounds x {CALLS:,} calls)")
    for col in ("credential", "µs per request", "added vs auth off (µs)", "rounds (µs)"):
        table.add_column(col)
    for name, values in results.items():
        med = statistics.median(values)
        table.add_row(name, f"{med:.1f}", "" if name == "auth off" else f"{med - base:+.1f}",
                      " ".join(f"{v:.1f}" for v in values))
    table.add_row("OIDC JWT, first sight (full RS256 check)", f"{fresh_us:.1f}", f"{fresh_us - base:+.1f}", "")
    Console(width=160).print(table)


if __name__ == "__main__":
    uvloop.run(main())
