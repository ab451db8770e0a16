"""OIDC bearer tokens checked against a JWKS served over HTTP by a local issuer made in the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pitstop.auth.oidc import OidcVerifier
from pitstop.errors import AuthError, ConfigError
from tests.support.jwks import LocalIssuer

pytestmark = pytest.mark.integration


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    server = LocalIssuer()
    yield server
    server.close()


def verifier(issuer: LocalIssuer, **kwargs: object) -> OidcVerifier:
    return OidcVerifier(issuer.url, "pitstop", leeway_seconds=5, **kwargs)  # type: ignore[arg-type]


def test_valid_token_gives_its_subject_and_scopes(issuer: LocalIssuer) -> None:
    principal = verifier(issuer).verify(issuer.token(scope="predict features:read openid"))
    assert principal.name == "svc-account" and principal.kind == "oidc"
    assert principal.scopes == {"predict", "features:read"}


def test_roles_claim_mapped_to_scopes(issuer: LocalIssuer) -> None:
    check = verifier(issuer, scopes_claim="roles", scope_map={"ml-app": ["predict", "models:read"]})
    assert check.verify(issuer.token(roles=["ml-app", "other"])).scopes == {"predict", "models:read"}


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"expires_in": -60}, "expired"),
    ({"issuer": "https://evil.example"}, "not issued by"),
    ({"audience": "someone-else"}, "audience"),
    ({"not_before": 600}, "not valid yet"),
])
def test_bad_tokens_are_refused(issuer: LocalIssuer, kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(AuthError, match=reason) as info:
        verifier(issuer).verify(issuer.token(**kwargs))  # type: ignore[arg-type]
    assert info.value.status == 401


def test_tampered_and_foreign_signatures_are_refused(issuer: LocalIssuer) -> None:
    check = verifier(issuer)
    token = issuer.token()
    head, body, sig = token.split(".")
    tampered = f"{head}.{body}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
    with pytest.raises(AuthError):
        check.verify(tampered)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthError):
        check.verify(issuer.token(key=stranger))  # right kid, wrong key


def test_rotated_key_is_fetched_on_an_unknown_kid(issuer: LocalIssuer) -> None:
    check = OidcVerifier(issuer.url, "pitstop", jwks_url=issuer.jwks_url)
    check.verify(issuer.token())
    fetched = issuer.fetches
    check._jwks().cooldown_duration = 0  # the test cannot wait out the refresh cooldown
    issuer.rotate()
    assert check.verify(issuer.token()).name == "svc-account"
    assert issuer.fetches == fetched + 1


def test_symmetric_algorithms_are_refused() -> None:
    with pytest.raises(ConfigError, match="HS256"):
        OidcVerifier("https://issuer", "pitstop", algorithms=("HS256",))
