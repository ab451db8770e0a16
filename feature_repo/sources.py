"""Where feature rows live. Paths are relative to offline_store.root (this folder)."""

from pitstop import KafkaSource, ParquetSource

driver_stats_source = ParquetSource(
    "driver_stats_source",
    path="data/driver_stats",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

# Fresh driver stats also arrive as JSON events on Kafka; `pitstop ingest` writes them online and
# appends them to driver_stats_source, so later training sets include them.
driver_stats_stream = KafkaSource(
    "driver_stats_stream",
    topic="driver_stats",
    timestamp_field="event_timestamp",
    batch_source=driver_stats_source,
)

customer_profile_source = ParquetSource(
    "customer_profile_source",
    path="data/customer_profile.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
