"""Model monitoring: the prediction log, reference profiles, drift, delayed-label performance and skew."""

from pitstop.monitoring.drift import (
    DriftReport,
    FeatureDrift,
    MultivariateDrift,
    adjust_p_values,
    compare_tables,
    drift_report,
    mmd_test,
)
from pitstop.monitoring.profile import ReferenceProfile, build_profile

__all__ = ["DriftReport", "FeatureDrift", "MultivariateDrift", "ReferenceProfile", "adjust_p_values",
           "build_profile", "compare_tables", "drift_report", "mmd_test"]
