from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_pitstop_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's PITSTOP_* variables must not change test results."""
    for var in list(os.environ):
        if var.startswith("PITSTOP_"):
            monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    """URL of a private redis-server started for this test session (never the shared one on 6379)."""
    from tests.integration.redis_server import RedisServer, RedisServerMissing
    from tests.support.local_server import started_or_fail

    with started_or_fail(RedisServer(tmp_path_factory.mktemp("redis")), RedisServerMissing) as server:
        yield server.url
