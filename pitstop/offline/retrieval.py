"""Build a training set: entity rows + resolved features -> one Arrow table, via an OfflineEngine."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pitstop.definitions import FeatureView, ParquetSource
from pitstop.definitions.contents import RepoContents
from pitstop.definitions.resolve import ResolvedFeatures
from pitstop.errors import NotFoundError, RetrievalError
from pitstop.offline.base import OfflineEngine, Progress
from pitstop.offline.entity_rows import epoch_us, to_arrow_table
from pitstop.offline.pit_sql import ETS, ROW, ViewQuery
from pitstop.offline.source_check import (
    FileVersion,
    pinned_files,
    source_file_versions,
    source_files,
    source_schema,
)


class SourceFiles:
    """Which files a training set reads per source: what is there now (recording the versions read),
    or exactly the versions of a recorded dataset (``pinned``)."""

    def __init__(self, root: Path | str, pinned: Mapping[str, list[FileVersion]] | None = None,
                 dataset_id: str | None = None) -> None:
        self.root = root
        self.pinned = pinned
        self.dataset_id = dataset_id or "?"
        self.read: dict[str, list[FileVersion]] = {}

    def files(self, source: ParquetSource) -> list[Path]:
        if self.pinned is not None:
            if source.name not in self.pinned:
                raise NotFoundError(f"dataset {self.dataset_id} read no files of source {source.name!r}: ask for the "
                                    "features it was recorded with")
            versions = self.pinned[source.name]
            paths = pinned_files(self.dataset_id, source, versions)
        else:
            found = source_file_versions(source, self.root)
            paths, versions = [p for p, _ in found], [v for _, v in found]
        self.read[source.name] = versions
        return paths


def _view_query(sel_view: FeatureView, features: list[str], files_of: SourceFiles) -> ViewQuery:
    source = sel_view.source.batch
    files = files_of.files(source)
    if not files:
        raise RetrievalError(f"feature view {sel_view.name!r}: source {source.name!r} has no Parquet files at {source.path!r}")
    ttl = int(sel_view.ttl.total_seconds() * 1_000_000) if sel_view.ttl else None
    return ViewQuery(sel_view.name, tuple(str(f) for f in files), tuple(sel_view.join_keys), source.timestamp_field,
                     source.created_timestamp_column, tuple(features), ttl)


def _check_key_types(entity: pa.Table, view: FeatureView, root: Path | str) -> None:
    schema = source_schema(view.source.batch, root)
    if schema is None:
        return
    for key in view.join_keys:
        left, right = entity.schema.field(key).type, schema.field(key).type
        same_family = any(
            check(left) and check(right)
            for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string)
        ) or (pa.types.is_string(left) and pa.types.is_large_string(right)) or left == right
        if not same_family and not pa.types.is_null(left):
            raise RetrievalError(
                f"entity rows column {key!r} has type {left} but feature view {view.name!r} stores it as {right}"
            )


def sources_map(contents: RepoContents, root: Path | str) -> dict[str, tuple[str, ...]]:
    """Source name -> its Parquet files, for SQL entity queries."""
    out = {}
    for name, src in contents.sources.items():
        if hasattr(src, "path"):
            out[name] = tuple(str(p) for p in source_files(src, root))  # type: ignore[arg-type]
    return out


def build_training_set(
    engine: OfflineEngine,
    contents: RepoContents,
    resolved: ResolvedFeatures,
    entity_df: Any,
    *,
    root: Path | str,
    created_cutoff: bool,
    timestamp_column: str,
    progress: Progress | None = None,
    files: SourceFiles | None = None,
) -> pa.Table:
    """Run the point-in-time join and on-demand transforms; returns entity columns then features.

    ``files`` chooses (and records) the source files read; default: what is there now.
    """
    files_of = files or SourceFiles(root)
    entity = to_arrow_table(entity_df, lambda q: engine.run_sql(q, sources_map(contents, root)))
    columns = entity.column_names
    if timestamp_column not in columns:
        raise RetrievalError(
            f"entity rows have no {timestamp_column!r} column (columns: {', '.join(columns)}); "
            "add the time each row's features should be as of"
        )
    for sel in resolved.views.values():
        missing = [k for k in sel.view.join_keys if k not in columns]
        if missing:
            raise RetrievalError(
                f"entity rows lack join key {missing[0]!r} needed by feature view {sel.view.name!r} "
                f"(columns: {', '.join(columns)})"
            )
        _check_key_types(entity, sel.view, root)
    for name in resolved.request_fields:
        if name not in columns:
            raise RetrievalError(f"entity rows lack column {name!r}, request data an on-demand feature view needs")
    clash = [n for n in resolved.output_names if n in columns]
    if clash:
        raise RetrievalError(
            f"feature column {clash[0]!r} has the name of an entity-row column; rename the column "
            "or pass full_feature_names=True"
        )
    n = entity.num_rows
    keys = entity.select(resolved.join_keys).append_column(ROW, pa.array(np.arange(n, dtype=np.int64)))
    keys = keys.append_column(ETS, epoch_us(entity.column(timestamp_column), timestamp_column))
    jobs = [(_view_query(sel.view, sel.features, files_of), sel.aliases) for sel in resolved.views.values()]
    parts = engine.point_in_time(keys, jobs, created_cutoff=created_cutoff, progress=progress)
    found: dict[str, pa.ChunkedArray] = {}
    for sel, part in zip(resolved.views.values(), parts, strict=True):
        dtypes = {f.name: f.dtype for f in sel.view.features}
        for feat in sel.features:
            found[sel.aliases[feat]] = part.column(sel.aliases[feat]).cast(dtypes[feat].to_arrow())
    for osel in resolved.on_demand.values():
        inputs = {}
        for view_name, feats in osel.view.view_inputs():
            for feat in feats:
                inputs[feat] = found[resolved.views[view_name].aliases[feat]]
        for fld in osel.view.request_fields:
            inputs[fld.name] = entity.column(fld.name)
        dtypes = {f.name: f.dtype for f in osel.view.features}
        if osel.view.mode == "python":
            columns = osel.view.transform_columns({k: v.to_pylist() for k, v in inputs.items()}, n)
            out = {feat: pa.array(columns[feat], from_pandas=True) for feat in osel.features}
        else:
            frame = pa.table(inputs).to_pandas() if inputs else pd.DataFrame(index=range(n))
            result_frame = osel.view.transform(frame)
            out = {feat: pa.array(result_frame[feat], from_pandas=True) for feat in osel.features}
        for feat in osel.features:
            try:
                column = out[feat].cast(dtypes[feat].to_arrow())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise osel.view.error(f"udf output {feat!r} cannot be read as {dtypes[feat]}: {exc}") from exc
            found[osel.aliases[feat]] = pa.chunked_array([column])
    result = entity
    for name in resolved.output_names:
        result = result.append_column(name, found[name])
    return result
