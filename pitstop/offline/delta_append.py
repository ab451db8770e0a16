"""Appends to a Delta Lake table (a ``DeltaSource`` used as a stream's or push source's batch source).

Each append is one Delta commit: new data files plus one log entry, written by ``deltalake``. A
commit is atomic, so a reader sees all of an append or none of it, and appends from several
processes or hosts each land (delta-rs retries a commit that raced another one). Compaction is
the table's ``optimize``, retention its ``vacuum`` (``pitstop compact``), and a training set reads
one version's file list, so compaction never swaps files under a running read.

On object storage, safe concurrent commits need the store's conditional writes: pitstop asks
delta-rs for them (``conditional_put=etag``), which S3 and SeaweedFS support.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from pitstop.definitions import DeltaSource
from pitstop.errors import OfflineStoreError
from pitstop.extras import require_extra
from pitstop.offline.compaction import CompactionOutcome
from pitstop.redaction import redact_text
from pitstop.storage import is_remote, resolve_path

__all__ = ["append_delta", "append_table", "compact_delta", "delta_location", "delta_storage_options",
           "migrate_folder"]


def delta_location(source: DeltaSource, root: Path | str) -> str:
    """The table's root as delta-rs wants it: an ``s3://`` URL, or an absolute local path."""
    return str(resolve_path(source.path, root)).rstrip("/")


def delta_storage_options(location: str, *, writing: bool = False) -> dict[str, str] | None:
    """Options for delta-rs: none locally; on S3 the AWS chain plus plain HTTP for local endpoints."""
    if not is_remote(location):
        return None
    options = {"AWS_ALLOW_HTTP": "true"} if os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://") else {}
    if writing:
        options["conditional_put"] = "etag"
    return options


def append_delta(source: DeltaSource, root: Path | str, table: pa.Table) -> None:
    """Append ``table`` to ``source``'s Delta table (creating it on first use), as one commit.

    Raises:
        OfflineStoreError: the table cannot be written (the rows are not committed; retry).
    """
    require_extra("delta", "appending to a DeltaSource", "deltalake")
    location = delta_location(source, root)
    if not is_remote(location):
        Path(location).mkdir(parents=True, exist_ok=True)
    try:
        append_table(location, table)
    except Exception as exc:  # delta-rs raises its own and plain exceptions
        raise OfflineStoreError(f"cannot append to Delta table {location} (source {source.name!r}): "
                                f"{redact_text(str(exc))}") from exc


def append_table(location: str, table: pa.Table, *, merge_schema: bool = False, attempts: int = 5) -> None:
    """One append commit to the Delta table at ``location`` (created on first use), retried when it raced
    another writer's commit that delta-rs does not retry itself: two writers creating the same new
    table (the loser sees "Metadata changed since last commit"; its retry appends to the created table).

    Raises:
        Exception: delta-rs's error after the last attempt.
    """
    from deltalake import write_deltalake

    options = delta_storage_options(location, writing=True)
    for attempt in range(attempts):
        try:
            # no reopening to read the new version: that was a third of each commit's cost
            write_deltalake(location, table, mode="append", schema_mode="merge" if merge_schema else None,
                            storage_options=options)
            return
        except Exception as exc:
            if type(exc).__name__ != "CommitFailedError" or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def compact_delta(name: str, source: DeltaSource, root: Path | str, *, retention_hours: float,
                  dry_run: bool = False) -> CompactionOutcome:
    """Merge a Delta batch table's small files (``optimize``), then ``vacuum`` files unused for ``retention_hours``.

    Raises:
        OfflineStoreError: the table cannot be read or rewritten (a failed optimize commits nothing).
    """
    require_extra("delta", "compacting a DeltaSource", "deltalake")
    from deltalake import DeltaTable

    started = time.perf_counter()
    location = delta_location(source, root)
    options = delta_storage_options(location, writing=True)
    outcome = CompactionOutcome(name, Path(location))
    try:
        table: Any = DeltaTable(location, storage_options=options)
        before = table.file_uris()
        outcome.files_before = outcome.files_after = len(before)
        outcome.directories = 1
        if not dry_run and len(before) > 1:
            table.optimize.compact()
            table = DeltaTable(location, storage_options=options)
            outcome.files_after = len(table.file_uris())
        outcome.rows = int(table.to_pyarrow_dataset().count_rows())
        if not dry_run:
            removed = table.vacuum(retention_hours=int(retention_hours), enforce_retention_duration=False,
                                   dry_run=False)
            if removed:
                outcome.skipped.append(f"vacuumed {len(removed)} file(s) unused for over {retention_hours:g} h")
    except Exception as exc:
        raise OfflineStoreError(f"cannot compact Delta table {location} (source {name!r}): "
                                f"{redact_text(str(exc))}") from exc
    outcome.seconds = time.perf_counter() - started
    return outcome


def migrate_folder(name: str, folder_files: list[Path], target: str) -> int:
    """Copy every row of a Parquet append folder (``folder_files``) into a new Delta table at ``target``.

    One commit; the folder is left as it is. Returns the number of rows copied.

    Raises:
        OfflineStoreError: the target already holds a Delta table, or a file cannot be read.
    """
    require_extra("delta", "migrating to a Delta table", "deltalake")
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    options = delta_storage_options(target, writing=True)
    if not folder_files:
        raise OfflineStoreError(f"source {name!r}: its folder holds no Parquet files to migrate")
    try:
        tables = [pq.read_table(f) for f in folder_files]
        table = pa.concat_tables(tables, promote_options="permissive")
        if not is_remote(target):
            Path(target).mkdir(parents=True, exist_ok=True)
        write_deltalake(target, table, mode="error", storage_options=options)
    except Exception as exc:
        raise OfflineStoreError(f"cannot migrate source {name!r} to a Delta table at {target}: "
                                f"{redact_text(str(exc))}") from exc
    return int(table.num_rows)

