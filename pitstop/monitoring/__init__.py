"""Model monitoring (issue 14, in progress): drift statistics between a reference and a current window."""

from pitstop.monitoring.drift import (
    FeatureDrift,
    adjust_p_values,
    categorical_drift,
    drift_table,
    numeric_drift,
)

__all__ = ["FeatureDrift", "adjust_p_values", "categorical_drift", "drift_table", "numeric_drift"]
