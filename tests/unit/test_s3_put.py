"""The SigV4 signer of create-only S3 writes, against the published AWS examples (no socket)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from pitstop.errors import ConfigError
from pitstop.storage.s3_put import S3Credentials, credentials_from_env, object_url, sign_request

# docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "Example signature calculations"
EXAMPLE = S3Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
WHEN = datetime(2013, 5, 24, tzinfo=UTC)
EMPTY = hashlib.sha256(b"").hexdigest()


def test_get_object_example() -> None:
    headers = sign_request("GET", "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"},
                           EMPTY, EXAMPLE, WHEN)
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    assert headers["Host"] == "examplebucket.s3.amazonaws.com" and headers["x-amz-date"] == "20130524T000000Z"


def test_put_object_example_encodes_the_key() -> None:
    payload = b"Welcome to Amazon S3."
    assert object_url("examplebucket", "test$file.text", EXAMPLE).endswith("/test%24file.text")
    url = "https://examplebucket.s3.amazonaws.com/test%24file.text"
    headers = sign_request("PUT", url, {"Date": "Fri, 24 May 2013 00:00:00 GMT",
                                        "x-amz-storage-class": "REDUCED_REDUNDANCY"},
                           hashlib.sha256(payload).hexdigest(), EXAMPLE, WHEN)
    assert headers["Authorization"].endswith(
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")


def test_session_token_and_conditional_header_are_signed() -> None:
    temporary = S3Credentials("AKID", "secret", "token-value", "eu-west-1", "http://127.0.0.1:8333")
    url = object_url("bucket", "models/m/1/model.pkl", temporary)
    assert url == "http://127.0.0.1:8333/bucket/models/m/1/model.pkl"
    headers = sign_request("PUT", url, {"If-None-Match": "*"}, EMPTY, temporary, WHEN)
    assert headers["Host"] == "127.0.0.1:8333" and headers["x-amz-security-token"] == "token-value"
    assert "/20130524/eu-west-1/s3/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date;x-amz-security-token," \
        in headers["Authorization"]


def test_object_urls_on_aws() -> None:
    assert object_url("b", "k/x y", EXAMPLE) == "https://b.s3.us-east-1.amazonaws.com/k/x%20y"
    assert object_url("b.dotted", "k", EXAMPLE) == "https://s3.us-east-1.amazonaws.com/b.dotted/k"


def test_credentials_come_from_the_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        credentials_from_env()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    credentials = credentials_from_env()
    assert (credentials.region, credentials.endpoint, credentials.session_token) == ("us-east-1", None, None)
    assert "very-secret" not in repr(credentials)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:8333")
    with pytest.raises(ConfigError, match="http:// or https://"):
        credentials_from_env()
