"""The data files of one version of a Delta Lake table (``DeltaSource``), read with ``deltalake``.

Only the transaction log is read here; the Parquet data files are then read like any source's, so
DuckDB needs no Delta extension. A table whose readers need deletion vectors or column mapping is
refused: its data files alone do not hold the table's rows.

delta-rs's runtime does not survive ``fork()`` after first use: tables are opened only in the
process that reads them (gunicorn workers, ingesters, CLI), never before forking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pitstop.definitions import DeltaSource
from pitstop.errors import NotFoundError, OfflineStoreError
from pitstop.extras import require_extra
from pitstop.offline.delta_append import delta_location, delta_storage_options
from pitstop.redaction import redact_text

__all__ = ["delta_files"]

_UNSUPPORTED = {"deletionVectors": "deletion vectors", "columnMapping": "column mapping"}


def delta_files(source: DeltaSource, root: Path | str, version: int | None = None) -> tuple[int, list[str]]:
    """(table version, data file paths or URLs) of ``source`` at ``version`` (default: the latest).

    Raises:
        MissingExtraError: deltalake is not installed (``pitstop[delta]``).
        NotFoundError: there is no Delta table at the path, or not at that version (vacuumed).
        OfflineStoreError: the table needs reader features pitstop cannot honour, or cannot be read.
    """
    require_extra("delta", "DeltaSource", "deltalake")
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    location = delta_location(source, root)
    try:
        table: Any = DeltaTable(location, version=version, storage_options=delta_storage_options(location))
    except TableNotFoundError:
        raise NotFoundError(f"source {source.name!r}: no Delta table at {location}") from None
    except Exception as exc:  # delta-rs raises plain exceptions for a missing version or a failed read
        text = redact_text(str(exc))
        if version is not None and ("version" in text.lower() or "not found" in text.lower()):
            raise NotFoundError(f"source {source.name!r}: Delta table {location} has no version {version} any "
                                f"more (vacuumed or never written): {text}") from None
        raise OfflineStoreError(f"source {source.name!r}: cannot read Delta table {location}: {text}") from None
    features = set(table.protocol().reader_features or [])
    blocked = [label for feature, label in _UNSUPPORTED.items() if feature in features]
    if blocked:
        raise OfflineStoreError(f"source {source.name!r}: Delta table {location} uses {' and '.join(blocked)}, "
                                "which pitstop cannot read from data files alone; rewrite the table without them")
    return int(table.version()), [str(uri) for uri in table.file_uris()]
