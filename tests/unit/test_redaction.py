"""Secrets never leave pitstop in a URL or an error message: user-info passwords and secret query values."""

from __future__ import annotations

from pathlib import Path

import pytest

from pitstop.errors import ConfigError, OnlineStoreError
from pitstop.online.factory import open_online_store
from pitstop.redaction import redact_text, redact_url, url_secrets


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cr3t@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://user:s3cr3t@h/0?password=s3cr3t2&db=1", "redis://user:***@h/0?password=***&db=1"),
    ("postgresql://u@h/db?password=x%40y&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://h/db?sslpassword=q&application_name=a", "postgresql://h/db?sslpassword=***&application_name=a"),
    ("rediss://h:1/0?ssl_certfile=/etc/c.pem", "rediss://h:1/0?ssl_certfile=/etc/c.pem"),
    ("redis://u:p@ss@h/0", "redis://u:***@h/0"),
    ("redis+cluster://a:1,b:2?token=abc", "redis+cluster://a:1,b:2?token=***"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
])
def test_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_secrets_are_scrubbed_from_driver_messages() -> None:
    url = "postgresql://u:pa%24%24@h/db?password=tok3n"
    message = "FATAL: password authentication failed (tried pa$$ and tok3n) for postgresql://u:pa%24%24@h/db"
    text = redact_text(message, url)
    assert "pa$$" not in text and "tok3n" not in text and "pa%24%24" not in text
    assert set(url_secrets(url)) >= {"pa$$", "pa%24%24", "tok3n"}


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0?password=hunter2", "redis://:hunter2@127.0.0.1:1/0"])
def test_online_store_errors_never_echo_a_password(url: str) -> None:
    store = open_online_store(url, "p", Path("."))
    try:
        with pytest.raises(OnlineStoreError) as info:
            store.ping()
    finally:
        store.close()
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_rejected_online_urls_never_echo_a_password() -> None:
    with pytest.raises(ConfigError) as info:
        open_online_store("mysql://h/db?password=hunter2", "p", Path("."))
    assert "hunter2" not in str(info.value)
