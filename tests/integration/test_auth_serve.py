"""Auth against a real `pitstop serve` (gunicorn, 2 workers): a route x credential matrix built from the
app's own route table, API keys from the registry, JWTs from a local issuer whose JWKS is served over HTTP."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pitstop.auth.keyring import ApiKeys
from pitstop.serving.route_scopes import AUTHENTICATED, OPEN, ROUTE_SCOPES
from tests.integration.serve_process import ServeProcess
from tests.serving.conftest import build_served_repo
from tests.support.jwks import LocalIssuer
from tests.support.tls import self_signed, trusting

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BODIES: dict[str, Any] = {
    "/features": {"features": ["stats:rate"], "entities": {"driver_id": [1]}},
    "/predict": {"model": "rate", "entities": {"driver_id": [1]}, "request_data": {"bonus": [0.0]}},
    "/push/{source}": {"rows": [{"driver_id": 9, "event_timestamp": "2026-01-01T00:00:00Z", "speed": 1.0}]},
}
ALL_SCOPES = ["features:read", "predict", "push", "models:read", "metrics"]


def request(port: int, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, dict[str, str], LocalIssuer]]:
    root = tmp_path_factory.mktemp("auth")
    repo = root / "repo"
    issuer = LocalIssuer()
    store = build_served_repo(repo)
    keys = ApiKeys(store.registry)
    secrets = {scope: keys.create(scope.replace(":", "-"), [scope]).secret for scope in ALL_SCOPES}
    secrets["other"] = keys.create("other", ["metrics"]).secret
    secrets["admin"] = keys.create("admin-key", ["admin"]).secret  # the UI's writes need admin
    secrets["revoked"] = keys.create("revoked", ["admin"]).secret
    keys.revoke("revoked")
    env = {"PITSTOP_AUTH_ENABLED": "true", "PITSTOP_AUTH_OIDC_ISSUER": issuer.url, "PITSTOP_AUTH_OIDC_AUDIENCE": "pitstop",
           "PITSTOP_AUTH_OIDC_JWKS_URL": issuer.jwks_url, "PITSTOP_AUTH_KEY_REFRESH_SECONDS": "0.5"}
    server = ServeProcess(repo, root, workers=2, env=env)
    with store, server:
        yield server, secrets, issuer
    issuer.close()


def credentials(secrets: dict[str, str], issuer: LocalIssuer, scope: str) -> dict[str, tuple[str | None, bool]]:
    """credential name -> (token, whether it must be accepted) for a route needing ``scope``."""
    wrong = "metrics" if scope != "metrics" else "predict"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good_jwt = issuer.token(scope=" ".join(ALL_SCOPES + (["admin"] if scope == "admin" else [])))
    head, payload, sig = good_jwt.split(".")
    return {
        "anonymous": (None, False),
        "wrong scope key": (secrets[wrong], scope == AUTHENTICATED),
        "right scope key": (secrets[scope] if scope in secrets else secrets["metrics"], True),
        "revoked key": (secrets["revoked"], False),
        "garbage key": (secrets["metrics"][:-3] + "abc", False),
        "valid jwt": (good_jwt, True),
        "expired jwt": (issuer.token(scope=" ".join(ALL_SCOPES), expires_in=-120), False),
        "jwt from another issuer": (issuer.token(scope="admin", issuer="https://other.example"), False),
        "jwt for another audience": (issuer.token(scope="admin", audience="someone-else"), False),
        "tampered jwt": (f"{head}.{payload}.{sig[:-6]}AAAAAA", False),
        "jwt signed by a stranger": (issuer.token(scope="admin", key=stranger), False),
    }


def test_route_by_credential_matrix(served: tuple[ServeProcess, dict[str, str], LocalIssuer]) -> None:
    server, secrets, issuer = served
    failures = []
    for (method, template), scope in ROUTE_SCOPES.items():
        path = template.replace("{source}", "speed_push")
        body = BODIES.get(template)
        if scope == OPEN:
            status, _ = request(server.port, method, path, None, body)
            if status in (401, 403):
                failures.append(f"{method} {path} anonymous: {status}")
            continue
        for name, (token, accepted) in credentials(secrets, issuer, scope).items():
            status, text = request(server.port, method, path, token, body)
            ok = status not in (401, 403) if accepted else status in (401, 403)
            if scope != AUTHENTICATED and not accepted and name == "wrong scope key":
                ok = status == 403
            elif not accepted and name != "wrong scope key":
                ok = status == (303 if path.startswith("/ui") else 401)  # a browser is sent to sign in
            if not ok:
                failures.append(f"{method} {path} with {name}: {status} {text[:120]}")
            if token and token in text:
                failures.append(f"{method} {path} with {name}: the credential was echoed")
    assert failures == []


def test_revocation_reaches_both_workers(served: tuple[ServeProcess, dict[str, str], LocalIssuer]) -> None:
    server, secrets, _ = served
    store_repo = server.repo
    from pitstop import FeatureStore

    with FeatureStore(store_repo) as store:
        keys = ApiKeys(store.registry)
        secret = keys.create("short-lived", ["features:read"]).secret
        deadline = time.monotonic() + 10
        while request(server.port, "POST", "/features", secret, BODIES["/features"])[0] != 200:
            assert time.monotonic() < deadline, "a new key was not accepted within 10 s"
            time.sleep(0.1)
        keys.revoke("short-lived")
    time.sleep(1.5)  # 3x auth.key_refresh_seconds
    statuses = {request(server.port, "POST", "/features", secret, BODIES["/features"])[0] for _ in range(40)}
    assert statuses == {401}  # 40 fresh connections: both workers were asked


def test_secrets_never_reach_the_log(served: tuple[ServeProcess, dict[str, str], LocalIssuer]) -> None:
    server, secrets, issuer = served
    token = issuer.token(scope="admin")
    request(server.port, "POST", "/push/speed_push", token, {"rows": [{"bogus": 1}]})
    request(server.port, "POST", "/predict", secrets["predict"], {"model": "nope", "entities": {"driver_id": [1]}})
    log = Path(server.log_path).read_text(errors="replace")
    for secret in secrets.values():
        assert secret not in log
        assert secret[len("psk_") + 13:] not in log  # the secret part alone (base64url may itself hold "_")
    assert token not in log and token.rsplit(".", 1)[-1] not in log  # the JWT, and its signature alone


def test_https_serves_keys_and_refuses_plain_http(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    store = build_served_repo(repo)
    secret = ApiKeys(store.registry).create("tls-app", ["features:read"]).secret
    certfile, keyfile = self_signed(tmp_path)
    env = {"PITSTOP_AUTH_ENABLED": "true"}
    server = ServeProcess(repo, tmp_path, workers=1, env=env, token=secret, tls=trusting(certfile))
    server.extra_args = ["--certfile", str(certfile), "--keyfile", str(keyfile)]
    with store, server:
        status, body = server.request("POST", "/features", BODIES["/features"])
        assert status == 200, body
        assert server.request("POST", "/predict", BODIES["/predict"])[0] == 403
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/health")
            answer = plain.getresponse()
            assert answer.status >= 400  # whatever it is, it is not a plain-HTTP success
            raise http.client.HTTPException(f"plain HTTP answered {answer.status}")
        plain.close()
