"""Boundary rules: what a value from outside (a request, a message, a DataFrame, entity rows) must be.

One module decides, for every entry point alike (``/push``, ``/features``, ``/predict``, the stream
ingester's decoder, ``FeatureStore.push`` and entity rows), whether a value fits its dtype, what
a timestamp means and which times are accepted, so the same input gets the same answer everywhere:

  * ``timestamps``: ISO-8601 text or numbers in a declared unit, inside 1900-01-01..2262-04-11,
    and no later than now plus ``online_store.max_future_seconds`` for writers;
  * ``values``: one value against its dtype, and entity keys;
  * ``columns``: the same rules over whole Arrow columns, vectorized.

Tier 1: imports only ``pitstop.errors``, ``pitstop.definitions.dtypes``, the stdlib, and Arrow/numpy
(in ``columns``).
"""

from pitstop.boundary.timestamps import (
           MAX_US,
           MIN_US,
           TimeUnit,
           latest_us,
           shown,
           timestamp_us,
           window_reason,
)
from pitstop.boundary.values import check_keys, check_value, kind_of

__all__ = ["MAX_US", "MIN_US", "TimeUnit", "check_keys", "check_value", "kind_of", "latest_us", "shown",
           "timestamp_us", "window_reason"]
