"""POST /push/{source}: rows an application sends for the views of one push source.

Only ``PushSource`` sources are written: a Kafka source is fed by its topic and a Parquet source by
its files, so pushing to them would bypass the ingester's checks and the files' history. Rows
follow the boundary rules (``pitstop.boundary``); a refused value answers 422 naming
``rows.<column>[<row>]`` and the reason.
"""

from __future__ import annotations

from typing import Any

from pitstop.boundary import latest_us, shown
from pitstop.definitions.sources import PushSource
from pitstop.errors import PitstopError
from pitstop.serving.errors import ApiError, from_pitstop_error
from pitstop.serving.inputs import rows_to_table
from pitstop.serving.schemas import PushRequest
from pitstop.store import FeatureStore


def push(store: FeatureStore, source: str, body: PushRequest) -> dict[str, Any]:
    """Check and write ``body.rows`` for every view fed by push source ``source``.

    Raises:
        ApiError: 404 for an unknown source; 422 for a source that is not a push source, one no view
            reads, or rows that break the boundary rules (naming the field); 503 when the store is down.
    """
    contents = store.definitions()
    found = contents.sources.get(source)
    if found is None:
        known = ", ".join(sorted(n for n, s in contents.sources.items() if isinstance(s, PushSource))) or "none"
        raise ApiError(404, "not_found", f"unknown source {shown(source)}; push sources: {known}", "source")
    if not isinstance(found, PushSource):
        kind = {"KafkaSource": "a Kafka source (fed by its topic through `pitstop ingest`)",
                "ParquetSource": "a Parquet source (fed by its files, then `pitstop materialize`)"}.get(
                    type(found).__name__, f"a {type(found).__name__}")
        raise ApiError(422, "not_a_push_source", f"source {source!r} is {kind}; /push writes push sources only: "
                       f"define a PushSource(name=..., batch_source=...) for the views that receive pushed rows",
                       "source")
    views = [v for v in contents.views.values() if v.source.name == source]
    if not views:
        raise ApiError(422, "invalid_request", f"no feature view reads from source {source!r}", "source")
    max_future = store.settings.online_store.max_future_seconds
    table = rows_to_table(views, body.rows, store.settings.offline_root, unit=body.timestamp_unit,
                          latest=latest_us(max_future))
    try:
        result = store.push(source, table, to=body.to, timestamp_unit=body.timestamp_unit)
    except PitstopError as exc:
        raise from_pitstop_error(exc, "rows") from exc
    return {"written": result.written, "stale": result.stale}
