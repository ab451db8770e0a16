"""The Parquet files behind a source, their schema, and checks of feature views against it (naming the
definition's file and line)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pitstop.definitions import DeltaSource, FeatureView, ParquetSource
from pitstop.definitions.contents import RepoContents
from pitstop.errors import NotFoundError
from pitstop.offline.delta_files import delta_files
from pitstop.storage import (
    is_remote,
    list_remote_parquet,
    list_remote_parquet_many,
    local_copies,
    resolve_path,
)


def source_files(source: ParquetSource, root: Path | str) -> list[Path]:
    """The Parquet files behind ``source`` (a file, a directory tree, or a glob), sorted.

    An ``s3://`` path (or a relative path under an ``s3://`` offline root) is listed in object
    storage and read through this host's cache of local copies (pitstop.storage), so everything
    downstream reads local files. A ``DeltaSource`` gives the data files of the table's latest
    version (never files its log has removed).
    """
    if isinstance(source, DeltaSource):
        return [path for path, _ in source_file_versions(source, root)]
    where = resolve_path(source.path, root)
    if isinstance(where, str):
        return local_copies(list_remote_parquet(where))
    if any(ch in str(where) for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(where), recursive=True))
    if where.is_dir():
        return sorted(where.rglob("*.parquet"))
    return [where] if where.exists() else []


@dataclass(frozen=True)
class FileVersion:
    """One source file as a training set read it: where (path or URL), its size, and its version
    (the modification time in ns for a local file, the ETag for an object)."""

    ref: str
    size: int
    version: str
    table_version: int | None = None
    """For a DeltaSource: the table version the file was read at (named when the file is gone)."""


def source_file_versions(source: ParquetSource, root: Path | str) -> list[tuple[Path, FileVersion]]:
    """The files behind ``source`` as local paths to read, each with the version it holds now."""
    if isinstance(source, DeltaSource):
        try:
            table_version, uris = delta_files(source, root)
        except NotFoundError:  # no table yet: like an empty folder (a stream's table appears on its first roll)
            return []
        remote = list_remote_parquet_many([u for u in uris if is_remote(u)])
        local = [Path(u.removeprefix("file://")) for u in uris if not is_remote(u)]
        found = [(p, FileVersion(str(p), p.stat().st_size, str(p.stat().st_mtime_ns), table_version)) for p in local]
        found += zip(local_copies(remote), [FileVersion(r.url, r.size, r.etag, table_version) for r in remote],
                     strict=True)
        return found
    where = resolve_path(source.path, root)
    if isinstance(where, str):
        remote = list_remote_parquet(where)
        return list(zip(local_copies(remote), [FileVersion(r.url, r.size, r.etag) for r in remote], strict=True))
    out = []
    for path in source_files(source, root):
        stat = path.stat()
        out.append((path, FileVersion(str(path), stat.st_size, str(stat.st_mtime_ns))))
    return out


def pinned_files(dataset_id: str, source: ParquetSource, versions: list[FileVersion]) -> list[Path]:
    """Local paths holding exactly ``versions`` of ``source``'s files (a recorded training set).

    Raises:
        NotFoundError: a file was removed or changed since the dataset was recorded (compaction,
            vacuum, an overwrite): naming the file and its recorded version.
    """
    remote = [v for v in versions if is_remote(v.ref)]
    current = {r.url: r for r in list_remote_parquet_many([v.ref for v in remote])} if remote else {}
    out = []
    for v in versions:
        if is_remote(v.ref):
            now = current.get(v.ref)
            if now is None or now.etag != v.version:
                raise NotFoundError(f"dataset {dataset_id}: {v.ref} (source {source.name!r}{_at(v)}) is gone or was "
                                    f"replaced since the dataset was recorded (ETag {v.version}); it cannot be read "
                                    "as it was")
            out.extend(local_copies([now]))
            continue
        path = Path(v.ref)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise NotFoundError(f"dataset {dataset_id}: file {v.ref} of source {source.name!r}{_at(v)} was removed "
                                "since the dataset was recorded (compaction, vacuum or cleanup); it cannot be read as "
                                "it was") from None
        if stat.st_size != v.size or str(stat.st_mtime_ns) != v.version:
            raise NotFoundError(f"dataset {dataset_id}: file {v.ref} of source {source.name!r} changed since the "
                                f"dataset was recorded ({v.size} bytes then, {stat.st_size} now)")
        out.append(path)
    return out


def _at(version: FileVersion) -> str:
    return f", Delta table version {version.table_version}" if version.table_version is not None else ""


def source_schema(source: ParquetSource, root: Path | str) -> pa.Schema | None:
    """The Arrow schema of the source's first file, or None when it has no files yet."""
    files = source_files(source, root)
    return pq.read_schema(files[0]) if files else None


def validate_view(view: FeatureView, root: Path | str) -> None:
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


def validate_contents(contents: RepoContents, root: Path | str) -> None:
    """Validate every feature view of ``contents`` against its data."""
    for view in contents.views.values():
        validate_view(view, root)
