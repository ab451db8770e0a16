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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A private 3-primary Redis Cluster started for this test session."""
    from tests.integration.redis_cluster import RedisCluster
    from tests.integration.redis_server import RedisServerMissing

    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"), nodes=3)
    try:
        cluster.start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster) -> str:
    """``redis+cluster://`` URL of the session's private Redis Cluster."""
    return redis_cluster.url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A private S3-compatible server (SeaweedFS) with one bucket, for this test session."""
    from tests.integration.s3_server import S3Server

    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch):
    """The standard AWS variables pointing at the session's S3 server (what a user's deployment sets)."""
    for name, value in {**s3_server.env, "AWS_ENDPOINT_URL": s3_server.endpoint}.items():
        monkeypatch.setenv(name, value)
    return s3_server


SPARK_TEST_SETTINGS = ('{"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4", '
                       '"spark.default.parallelism": "2", "spark.ui.enabled": "false"}}')


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def offline_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per offline engine (the engine contract): stores opened in it use that engine.

    Spark runs ``local[2]`` in this process; one SparkSession (one JVM) serves every Spark test.
    """
    monkeypatch.setenv("PITSTOP_OFFLINE_STORE_ENGINE", request.param)
    if request.param == "spark":
        monkeypatch.setenv("PITSTOP_OFFLINE_STORE_SPARK", SPARK_TEST_SETTINGS)
    return str(request.param)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import sys

    if "pyspark" in sys.modules:  # stop the shared local Spark, if a test started it
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
