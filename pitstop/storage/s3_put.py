"""Create-only object writes to S3: one SigV4-signed ``PUT`` with ``If-None-Match: *``.

pyarrow.fs cannot send conditional headers, and a plain PUT silently replaces an object, so
immutable keys (model artifacts) are written here with the S3 REST API directly. S3, SeaweedFS and
MinIO answer 412 Precondition Failed when the key exists; ``put_if_absent`` then returns False and
the object is left as it was.

Invariant: ``put_if_absent`` never replaces an existing object. The payload's sha256 is signed
(``x-amz-content-sha256``), so the server rejects a body damaged in transit.

Configuration is the standard AWS environment, like ``pitstop.storage.remote``: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, optional ``AWS_SESSION_TOKEN``, ``AWS_REGION`` (default ``us-east-1``) and
``AWS_ENDPOINT_URL`` for an S3-compatible server (path-style addressing). Keys never appear in messages.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from pitstop.errors import ConfigError
from pitstop.redaction import redact_text

__all__ = ["S3Credentials", "credentials_from_env", "object_url", "put_if_absent", "sign_request"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_EXISTS = (412, 409)  # 409 ConditionalRequestConflict: a concurrent conditional write to the same key won


@dataclass(frozen=True)
class S3Credentials:
    """Where and as whom to send S3 requests; the secret parts are left out of ``repr``.

    Attributes:
        access_key_id: ``AWS_ACCESS_KEY_ID``.
        secret_access_key: ``AWS_SECRET_ACCESS_KEY``.
        session_token: ``AWS_SESSION_TOKEN`` (temporary credentials), or None.
        region: the signing region.
        endpoint: ``scheme://host[:port]`` of an S3-compatible server, or None for AWS.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    endpoint: str | None = None


def credentials_from_env() -> S3Credentials:
    """The S3 credentials, region and endpoint of the standard AWS environment variables.

    Raises:
        ConfigError: the key pair is not set, or ``AWS_ENDPOINT_URL`` is not an http(s) URL.
    """
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise ConfigError("writing to s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment "
                          "(plus AWS_SESSION_TOKEN for temporary credentials); profiles and instance roles "
                          "are used for reads only")
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(f"AWS_ENDPOINT_URL must start with http:// or https://, got {redact_text(endpoint)!r}")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return S3Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None, region, endpoint)


def object_url(bucket: str, key: str, credentials: S3Credentials) -> str:
    """The HTTP URL of ``key`` in ``bucket``: path-style on a custom endpoint, virtual-hosted on AWS."""
    path = quote(key.lstrip("/"), safe="/-_.~")
    if credentials.endpoint is not None:
        return f"{credentials.endpoint.rstrip('/')}/{bucket}/{path}"
    if "." in bucket:  # a dotted bucket name does not match the wildcard TLS certificate
        return f"https://s3.{credentials.region}.amazonaws.com/{bucket}/{path}"
    return f"https://{bucket}.s3.{credentials.region}.amazonaws.com/{path}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _host(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def sign_request(method: str, url: str, headers: Mapping[str, str], payload_sha256: str,
                 credentials: S3Credentials, now: datetime | None = None) -> dict[str, str]:
    """``headers`` plus ``Host``, ``x-amz-date``, ``x-amz-content-sha256`` and a SigV4 ``Authorization``.

    Every header passed is signed. ``url`` must already be percent-encoded (``object_url``); query
    strings are not supported (this module sends none).

    Args:
        method: the HTTP method.
        url: the request URL.
        headers: extra headers to send and sign (e.g. ``If-None-Match``).
        payload_sha256: hex sha256 of the request body.
        credentials: key pair, session token and region.
        now: the signing time (tests); default: the current UTC time.
    """
    when = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    out = {"Host": _host(url), **headers, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
    if credentials.session_token:
        out["x-amz-security-token"] = credentials.session_token
    canonical = {name.lower(): " ".join(str(value).split()) for name, value in out.items()}
    signed = ";".join(sorted(canonical))
    request = "\n".join([method, urlsplit(url).path or "/", "",
                         "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)), signed, payload_sha256])
    scope = f"{day}/{credentials.region}/s3/aws4_request"
    to_sign = "\n".join([_ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{credentials.secret_access_key}".encode(), day), credentials.region), "s3"),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                            f"SignedHeaders={signed}, Signature={signature}")
    return out


def put_if_absent(bucket: str, key: str, data: bytes, credentials: S3Credentials, *, timeout: float = 60.0) -> bool:
    """Write ``data`` to ``bucket/key`` unless an object is already there (a single PUT, up to 5 GiB).

    Returns:
        True if the object was created, False if the key already existed (nothing was written).

    Raises:
        OSError: the server could not be reached or refused the write (credentials, bucket, size);
            the message holds the HTTP status and S3 error code, never a key.
    """
    url = object_url(bucket, key, credentials)
    headers = sign_request("PUT", url, {"If-None-Match": "*", "Content-Length": str(len(data))},
                           hashlib.sha256(data).hexdigest(), credentials)
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("PUT", parts.path, body=data, headers=headers)
        response = connection.getresponse()
        body = response.read(64 << 10).decode(errors="replace")
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise OSError(f"PUT s3://{bucket}/{key} failed: {redact_text(str(exc))}") from None
    finally:
        connection.close()
    if status in _EXISTS:
        return False
    if not 200 <= status < 300:
        code = re.search(r"<Code>([^<]*)</Code>", body)
        message = re.search(r"<Message>([^<]*)</Message>", body)
        detail = ": ".join(m.group(1) for m in (code, message) if m) or body[:200].strip()
        raise OSError(f"PUT s3://{bucket}/{key} answered HTTP {status} ({redact_text(detail)})")
    return True
