"""Feature views and an on-demand feature computed at request time."""

from datetime import timedelta

import pandas as pd
from entities import customer, driver
from sources import customer_profile_source, driver_stats_stream

from pitstop import FeatureView, Field, Float32, Float64, Int64, RequestSource, on_demand_feature_view

driver_hourly_stats = FeatureView(
    "driver_hourly_stats",
    entities=[driver],
    schema=[
        Field("conv_rate", Float32),
        Field("acc_rate", Float32),
        Field("avg_daily_trips", Int64),
    ],
    source=driver_stats_stream,
    ttl=timedelta(days=2),
    tags={"team": "driver_performance"},
)

customer_profile = FeatureView(
    "customer_profile",
    entities=[customer],
    schema=[
        Field("current_balance", Float32),
        Field("lifetime_trip_count", Int64),
    ],
    source=customer_profile_source,
    ttl=timedelta(days=30),
)

trip_request = RequestSource("trip_request", schema=[Field("trip_distance_km", Float64)])


@on_demand_feature_view(
    sources=[driver_hourly_stats[["conv_rate", "acc_rate"]], trip_request],
    schema=[Field("expected_completion", Float64)],
)
def trip_features(inputs: pd.DataFrame) -> pd.DataFrame:
    """Chance the driver accepts and completes this trip, discounted for long trips."""
    out = pd.DataFrame(index=inputs.index)
    distance_factor = 1.0 / (1.0 + inputs["trip_distance_km"].astype("float64") / 50.0)
    out["expected_completion"] = inputs["acc_rate"].astype("float64") * distance_factor
    return out
