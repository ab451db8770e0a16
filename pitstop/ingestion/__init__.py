"""Kafka stream ingestion: consumer-group loop, decoding, online/offline sinks, dead letters, metrics.

Tier 4 (an edge, like the CLI): it imports ``pitstop``'s API and engines; nothing in the core imports it.
See docs/ingestion.md for the message contract, the delivery guarantees and the settings.
"""

from pitstop.extras import require_extra

require_extra("kafka", "pitstop ingest", "kafka", "prometheus_client")

from pitstop.ingestion.pipeline import Ingester, IngestStats, stream_views  # noqa: E402  (after the check)

__all__ = ["IngestStats", "Ingester", "stream_views"]
