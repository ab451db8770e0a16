"""Choose the Kafka client library named by ``kafka.client`` (the only place that knows both)."""

from __future__ import annotations

from typing import Any

from pitstop.errors import ConfigError
from pitstop.ingestion.base import DeadLetterProducer, StreamConsumer
from pitstop.settings import KafkaSettings

__all__ = ["open_consumer", "open_producer"]


def _confluent() -> Any:
    try:
        from pitstop.ingestion import confluent_client
    except ModuleNotFoundError as exc:
        if exc.name != "confluent_kafka":
            raise
        raise ConfigError("kafka.client is confluent-kafka but the package is not installed; "
                          "install it with: pip install 'pitstop[kafka]'") from None
    return confluent_client


def open_consumer(settings: KafkaSettings, *, max_poll_records: int) -> StreamConsumer:
    """A consumer-group member on the configured client (not yet subscribed).

    Raises:
        ConfigError: the client library is missing or ``api_version`` is malformed.
        StreamUnavailableError: the client could not be created (e.g. no broker answered).
    """
    if settings.client == "confluent-kafka":
        return _confluent().ConfluentConsumer(settings, max_poll_records=max_poll_records)
    from pitstop.ingestion.kafka_python_client import KafkaPythonConsumer

    return KafkaPythonConsumer(settings, max_poll_records=max_poll_records)


def open_producer(settings: KafkaSettings) -> DeadLetterProducer:
    """A dead-letter producer on the configured client."""
    if settings.client == "confluent-kafka":
        return _confluent().ConfluentProducer(settings)
    from pitstop.ingestion.kafka_python_client import KafkaPythonProducer

    return KafkaPythonProducer(settings)
