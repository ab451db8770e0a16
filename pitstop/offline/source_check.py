"""The Parquet files behind a source, their schema, and checks of feature views against it (naming the
definition's file and line)."""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pitstop.definitions import FeatureView, ParquetSource
from pitstop.definitions.contents import RepoContents
from pitstop.storage import is_remote, list_remote_parquet, local_copies


def source_files(source: ParquetSource, root: Path) -> list[Path]:
    """The Parquet files behind ``source`` (a file, a directory tree, or a glob), sorted.

    An ``s3://`` path is listed in object storage and read through this host's cache of local
    copies (pitstop.storage), so everything downstream reads local files.
    """
    if is_remote(source.path):
        return local_copies(list_remote_parquet(source.path))
    path = Path(source.path).expanduser()
    if not path.is_absolute():
        path = root / path
    if any(ch in str(path) for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True))
    if path.is_dir():
        return sorted(path.rglob("*.parquet"))
    return [path] if path.exists() else []


def source_schema(source: ParquetSource, root: Path) -> pa.Schema | None:
    """The Arrow schema of the source's first file, or None when it has no files yet."""
    files = source_files(source, root)
    return pq.read_schema(files[0]) if files else None


def validate_view(view: FeatureView, root: Path) -> None:
    """Raise DefinitionError (with file:line) when ``view`` does not fit its source's Parquet schema.

    A view fed by a KafkaSource or PushSource may have no Parquet files yet; it is then checked
    when data arrives.
    """
    source = view.source.batch
    schema = source_schema(source, root)
    if schema is None:
        if isinstance(view.source, ParquetSource):
            raise view.error(
                f"source {source.name!r} has no Parquet files at {source.path!r} "
                f"(resolved against {root}); create the data or fix the path"
            )
        return
    columns = {f.name: f.type for f in schema}
    where = f"the Parquet schema of source {source.name!r} ({source.path})"
    for col, role in [(source.timestamp_field, "timestamp_field"), (source.created_timestamp_column, "created_timestamp_column")]:
        if col is None:
            continue
        if col not in columns:
            raise view.error(f"{role} {col!r} is not a column of {where}; columns are {', '.join(columns)}")
        if not (pa.types.is_timestamp(columns[col]) or pa.types.is_date(columns[col])):
            raise view.error(f"{role} {col!r} in {where} has type {columns[col]}, expected a timestamp")
    for key in view.join_keys:
        if key not in columns:
            raise view.error(f"join key {key!r} is not a column of {where}; columns are {', '.join(columns)}")
    for fld in view.fields:
        if fld.name not in columns:
            raise view.error(f"feature {fld.name!r} is not a column of {where}; columns are {', '.join(columns)}")
        if not fld.dtype.accepts(columns[fld.name]):
            raise view.error(
                f"feature {fld.name!r} is declared {fld.dtype} but {where} stores {columns[fld.name]}; "
                "change the Field dtype or the data"
            )


def validate_contents(contents: RepoContents, root: Path) -> None:
    """Validate every feature view of ``contents`` against its data."""
    for view in contents.views.values():
        validate_view(view, root)
