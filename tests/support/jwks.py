"""A local JWKS endpoint and token factory for OIDC tests: key pairs made in the test, served over HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class LocalIssuer:
    """An identity provider stand-in: signs tokens and serves its public keys (and discovery) on 127.0.0.1."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.endswith("/.well-known/openid-configuration"):
                    body = {"issuer": issuer.url, "jwks_uri": issuer.jwks_url}
                elif self.path.endswith("/jwks"):
                    issuer.fetches += 1
                    body = {"keys": [dict(json.loads(RSAAlgorithm.to_jwk(k.public_key())), kid=kid, alg="RS256",
                                          use="sig") for kid, k in issuer.keys.items()]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/realm"
        self.jwks_url = self.url + "/jwks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def rotate(self) -> str:
        """Add a new signing key (the old ones stay published); returns its key id."""
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.current = kid
        return kid

    def token(self, *, audience: str = "pitstop", issuer: str | None = None, scope: Any = "predict",
              expires_in: float = 300, not_before: float | None = None, kid: str | None = None,
              key: Any = None, **claims: Any) -> str:
        now = time.time()
        payload = {"iss": issuer or self.url, "aud": audience, "sub": "svc-account", "iat": int(now),
                   "exp": int(now + expires_in), "scope": scope, **claims}
        if not_before is not None:
            payload["nbf"] = int(now + not_before)
        kid = kid or self.current
        return jwt.encode(payload, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
