"""Where feature rows live. Paths are relative to offline_store.root (this folder)."""

from pitstop import ParquetSource

driver_stats_source = ParquetSource(
    "driver_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

customer_profile_source = ParquetSource(
    "customer_profile_source",
    path="data/customer_profile.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
