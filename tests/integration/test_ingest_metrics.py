"""The ingester's metrics endpoint: a taken port is one clear configuration error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pitstop.errors import ConfigError
from pitstop.ingestion import Ingester
from pitstop.settings import IngestSettings
from tests.support.ingest_fakes import TOPIC, FakeConsumer, FakeProducer
from tests.support.stream_repo import make_stream_repo

pytestmark = pytest.mark.integration


def test_a_taken_metrics_port_is_a_config_error(tmp_path: Path) -> None:
    store = make_stream_repo(tmp_path, online_url="sqlite:///data/online.db", bootstrap="unused:9092", topic=TOPIC,
                             group="g")
    with store, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store.settings = store.settings.model_copy(
            update={"ingest": IngestSettings(metrics_port=port, metrics_host="127.0.0.1")})
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            Ingester(store, consumer=FakeConsumer([]), producer=FakeProducer()).run(max_seconds=1)
