from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory):
    """``host:port`` of a private Tansu broker for this test session (memory storage; tests use unique topics).

    Set ``KAFKA_BOOTSTRAP`` to run the same tests against a real Kafka cluster instead.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from tests.integration.kafka_broker import TansuBroker, TansuMissing
    from tests.support.local_server import started_or_fail

    with started_or_fail(TansuBroker(tmp_path_factory.mktemp("tansu")), TansuMissing) as broker:
        yield broker.bootstrap
