"""Feature services: a model's ordered input signature."""

from views import customer_profile, driver_hourly_stats, trip_features

from pitstop import FeatureService

driver_activity = FeatureService(
    "driver_activity",
    features=[driver_hourly_stats, customer_profile[["current_balance"]], trip_features],
    description="Inputs of the trip-completion model",
)
