"""DuckDBOfflineEngine: point-in-time joins over Parquet with DuckDB, in bounded memory.

Per view, the join first finds one feature *row id* per entity row (late materialization, see
``pit_sql``), then gathers the feature columns from Parquet with Arrow ``take``, a batch of row
groups at a time. Finding the row ids takes one of two exact routes:

* one integer join key whose values and times pack into 63 bits: ``pit_numpy`` (one sort of the
  view's narrow rows, entity rows sorted once for all such views, a binary search per entity row);
  the rare rows it cannot settle go through the SQL route;
* otherwise SQL: the view's timeline, then ASOF joins of entity rows in chunks of ``CHUNK_ROWS``.

DuckDB runs under a memory limit with a temp directory, so sorts larger than memory spill to disk
instead of failing; feature payloads never enter DuckDB.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pitstop.errors import ConfigError, OfflineStoreError
from pitstop.log import get_logger
from pitstop.offline import pit_numpy
from pitstop.offline.base import Progress
from pitstop.offline.latest import earliest_event_sql, latest_ids_sql
from pitstop.offline.pit_sql import (
    ETS,
    FID,
    FID_SHIFT,
    MIN_US,
    ROW,
    ViewQuery,
    epoch_sql,
    match_sql,
    quote,
    scan,
    timeline_sql,
)
from pitstop.settings import OfflineStoreSettings

log = get_logger(__name__)

CHUNK_ROWS = 4_000_000
"""Entity rows joined per ASOF pass; bounds the memory of one pass."""
PARALLEL_SORT_ROWS = 2_000_000
"""Entity rows from which DuckDB's multi-threaded sort beats numpy's argsort."""
GATHER_BYTES = 128 << 20
"""Uncompressed feature bytes read from Parquet at once when gathering matched rows."""


def memory_limit_bytes(setting: str) -> str:
    """DuckDB memory limit text; a percentage is taken of physical memory."""
    text = setting.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) / 100
        except ValueError as exc:
            raise ConfigError(f"offline_store.memory_limit {setting!r} is not a percentage") from exc
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return f"{int(total * share) // (1 << 20)}MB"
    return text


def to_arrow(rel: duckdb.DuckDBPyRelation) -> pa.Table:
    """Arrow result of a relation across DuckDB versions (2.x renamed the method)."""
    method = getattr(rel, "to_arrow_table", None) or rel.arrow
    return method()


class DuckDBOfflineEngine:
    """The embedded offline engine. One DuckDB connection per retrieval, so calls are thread-safe."""

    def __init__(self, settings: OfflineStoreSettings) -> None:
        self.settings = settings
        self._memory_limit = memory_limit_bytes(settings.memory_limit)
        self._temp_dir = settings.temp_directory or str(Path(tempfile.gettempdir()) / "pitstop-duckdb")
        self._lock = threading.Lock()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh connection with the memory limit, spill directory and UTC time zone set."""
        config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": self._memory_limit, "temp_directory": self._temp_dir}
        if self.settings.threads:
            config["threads"] = self.settings.threads
        try:
            con = duckdb.connect(config=config)
            con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise ConfigError(f"offline_store settings rejected by DuckDB: {exc}") from exc
        return con

    def latest_rows(self, view: ViewQuery, start_us: int, end_us: int, batch_rows: int) -> Iterator[pa.Table]:
        con = self.connect()
        try:
            ids = to_arrow(con.sql(latest_ids_sql(view, start_us, end_us)))
        except duckdb.Error as exc:
            raise OfflineStoreError(f"reading the latest rows of view {view.name!r} failed: {exc}") from exc
        finally:
            con.close()
        if ids.num_rows == 0:
            return
        # row-id order makes each chunk's gather touch one contiguous run of row groups
        ids = ids.take(pa.array(np.argsort(ids.column(FID).to_numpy(), kind="stable")))
        aliases = {f: f for f in view.features}
        for lo in range(0, ids.num_rows, batch_rows):
            chunk = ids.slice(lo, batch_rows)
            values = gather(view, aliases, chunk.column(FID).to_numpy())
            out = chunk.drop_columns([FID])
            for name in view.features:
                out = out.append_column(name, values.column(name))
            yield out

    def earliest_event_us(self, view: ViewQuery) -> int | None:
        con = self.connect()
        try:
            value = con.execute(earliest_event_sql(view)).fetchall()[0][0]
            return None if value is None else int(value)
        except duckdb.Error as exc:
            raise OfflineStoreError(f"reading the earliest event of view {view.name!r} failed: {exc}") from exc
        finally:
            con.close()

    def run_sql(self, query: str, sources: dict[str, tuple[str, ...]]) -> pa.Table:
        con = self.connect()
        try:
            for name, files in sources.items():
                if files:
                    con.execute(f"CREATE TEMP VIEW {quote(name)} AS SELECT * FROM {scan(files)}")
            return to_arrow(con.sql(query))
        except duckdb.Error as exc:
            raise OfflineStoreError(f"entity query failed: {exc}") from exc
        finally:
            con.close()

    def point_in_time(
        self,
        keys: pa.Table,
        views: list[tuple[ViewQuery, dict[str, str]]],
        *,
        created_cutoff: bool,
        progress: Progress | None = None,
    ) -> list[pa.Table]:
        con = self.connect()
        total = 2 * len(views)
        results: list[pa.Table] = []
        sorted_by_key: dict[str, pit_numpy.SortedEntities | None] = {}
        try:
            for i, (view, aliases) in enumerate(views):
                if progress:
                    progress(f"join {view.name}", 2 * i, total)
                fid = self._row_ids(con, keys, view, created_cutoff, sorted_by_key)
                if progress:
                    progress(f"gather {view.name}", 2 * i + 1, total)
                results.append(gather(view, aliases, fid))
            if progress:
                progress("done", total, total)
            return results
        except duckdb.Error as exc:
            raise OfflineStoreError(f"point-in-time join failed: {exc}") from exc
        finally:
            con.close()

    def _row_ids(self, con: duckdb.DuckDBPyConnection, keys: pa.Table, view: ViewQuery, created_cutoff: bool,
                 sorted_by_key: dict[str, pit_numpy.SortedEntities | None]) -> np.ndarray:
        """Per entity row, the matched feature row id, or -1."""
        fid = np.full(keys.num_rows, -1, dtype=np.int64)
        pending: np.ndarray | None = None
        if len(view.join_keys) == 1:
            key = view.join_keys[0]
            if key not in sorted_by_key:
                sorted_by_key[key] = _sort_entities(keys, key, lambda values: _argsort(con, values))
            ents = sorted_by_key[key]
            rows = _view_rows(con, view, pit_numpy.RowFilter.of(ents, view.ttl_us)) if ents is not None else None
            if ents is not None and rows is not None:
                settled, found, pending = pit_numpy.match(ents, rows, view.ttl_us, created_cutoff)
                fid[settled] = found
                del rows
                if len(pending) == 0:
                    return fid
        subset = keys.take(pa.array(pending)) if pending is not None else keys
        self._sql_row_ids(con, subset, view, created_cutoff, fid, restrict=pending is not None)
        return fid

    def _sql_row_ids(self, con: duckdb.DuckDBPyConnection, keys: pa.Table, view: ViewQuery, created_cutoff: bool,
                     fid: np.ndarray, *, restrict: bool) -> None:
        """The SQL route: fill ``fid`` for the entity rows in ``keys`` (timeline, then chunked ASOF joins)."""
        n = keys.num_rows
        cols = [*view.join_keys, ROW, ETS]
        con.register("__entity_all", keys.select(cols))
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE __tl AS "
                        f"{timeline_sql(view, created_cutoff, only_keys_of='__entity_all' if restrict else None)}")
            for lo in range(0, n, CHUNK_ROWS):
                con.register("__entity_chunk", keys.select(cols).slice(lo, min(CHUNK_ROWS, n - lo)))
                part = to_arrow(con.sql(match_sql(view, "__entity_chunk", "__tl")))
                con.unregister("__entity_chunk")
                found = part.column(FID)
                rows = part.column(ROW).to_numpy()
                fid[rows] = found.fill_null(-1).to_numpy()
            con.execute("DROP TABLE __tl")
        finally:
            con.unregister("__entity_all")


def _argsort(con: duckdb.DuckDBPyConnection, values: np.ndarray) -> np.ndarray:
    """Positions that sort ``values``; DuckDB's parallel sort for large arrays, else numpy."""
    if len(values) < PARALLEL_SORT_ROWS:
        return np.argsort(values)
    con.register("__sort_input", pa.table({"v": values, "i": np.arange(len(values), dtype=np.int64)}))
    try:
        order = to_arrow(con.sql("SELECT i FROM __sort_input ORDER BY v")).column("i")
    finally:
        con.unregister("__sort_input")
    return order.to_numpy().astype(np.int64, copy=False)


def _sort_entities(keys: pa.Table, key: str,
                   argsort: Callable[[np.ndarray], np.ndarray]) -> pit_numpy.SortedEntities | None:
    """Entity rows sorted by (key, time) for the numpy route, or None if the key is not an integer."""
    got = pit_numpy.integer_array(keys.column(key))
    if got is None:
        return None
    values, valid = got
    ets, ets_valid = pit_numpy.integer_array(keys.column(ETS)) or (np.empty(0, np.int64), None)
    if ets_valid is not None:
        valid = ets_valid if valid is None else valid & ets_valid
    return pit_numpy.sort_entities(values, ets, valid, argsort)


def _view_rows(con: duckdb.DuckDBPyConnection, view: ViewQuery,
               row_filter: pit_numpy.RowFilter | None = None) -> pit_numpy.ViewRows | None:
    """The view's narrow rows sorted for the numpy route, or None if its key or ranges do not fit.

    Key, event time and created time are read together a row group at a time (straight from
    Parquet when the types allow, else via DuckDB) into preallocated int64 arrays; when they come
    straight from Parquet, rows ``row_filter`` rules out are dropped as they are read.
    """
    wanted = [(view.join_keys[0], False), (view.timestamp_field, True)]
    if view.created_field:
        wanted.append((view.created_field, True))
    narrow, kept = _narrow_columns(con, view, wanted, row_filter)
    if any(got is None for got in narrow):
        return None
    (key, key_ok), (ts, ts_ok) = narrow[0], narrow[1]  # type: ignore[misc]
    valid = key_ok if ts_ok is None else ts_ok if key_ok is None else key_ok & ts_ok
    rows = pit_numpy.sort_view_rows(key, ts, valid)
    del key, ts, narrow[:2]
    if rows is None:
        return None
    if view.created_field:
        values, ok = narrow[0]  # type: ignore[misc]
        if ok is not None:
            values = np.where(ok, values, MIN_US)
        rows.add_created(values)
    if kept is not None:
        rows.use_row_ids(kept)
    if len(view.files) > 1:
        rows.use_row_ids(_file_row_ids(view))
    return rows


def _direct(typ: pa.DataType | None, epoch: bool) -> bool:
    """Whether a Parquet column of type ``typ`` converts to int64 (epoch µs if ``epoch``) without DuckDB."""
    return typ is not None and (
        (epoch and pa.types.is_timestamp(typ) and typ.unit == "us")
        or (not epoch and pit_numpy.integer_array(pa.array([], type=typ)) is not None)
    )


def _narrow_columns(con: duckdb.DuckDBPyConnection, view: ViewQuery, wanted: list[tuple[str, bool]],
                    row_filter: pit_numpy.RowFilter | None = None,
                    ) -> tuple[list[tuple[np.ndarray, np.ndarray | None] | None], np.ndarray | None]:
    """Columns of all the view's files, in file order, as int64 (epoch µs where asked) and validity.

    Columns every file stores as an integer (or, for ``epoch``, a microsecond timestamp) are read
    together a row group at a time into preallocated arrays (one read decodes them in parallel);
    anything else is converted by DuckDB. None for a column whose values are not integers.

    With ``row_filter``, and when every column comes straight from Parquet, ``wanted[0]`` (the key)
    and ``wanted[1]`` (the event time) decide per row group which rows are kept: rows with a null
    key or time and rows the filter rules out are left out of every column, and the positions of
    the kept rows (in file order) are returned too; otherwise that is None.
    """
    files = [pq.ParquetFile(path) for path in view.files]
    direct: list[tuple[int, str, bool]] = []
    out: list[tuple[np.ndarray, np.ndarray | None] | None] = [None] * len(wanted)
    for i, (name, epoch) in enumerate(wanted):
        types = {f.schema_arrow.field(name).type if name in f.schema_arrow.names else None for f in files}
        typ = types.pop() if len(types) == 1 else None
        if _direct(typ, epoch):
            direct.append((i, name, epoch))
        else:
            expr = epoch_sql(name) if epoch else quote(name)
            table = to_arrow(con.sql(f"SELECT {expr} AS c FROM {scan(view.files)}"))
            out[i] = pit_numpy.integer_array(table.column("c"))
    if not direct:
        return out, None
    filtering = row_filter is not None and len(direct) == len(wanted)
    total = sum(f.metadata.num_rows for f in files)
    # untouched tail pages of np.empty are never faulted in, so a filtered read costs what it keeps
    values = {i: np.empty(total, dtype=np.int64) for i, _, _ in direct}
    valid: dict[int, np.ndarray] = {}
    kept: list[np.ndarray] = []
    names = list(dict.fromkeys(name for _, name, _ in direct))
    at = start = 0
    for parquet in files:
        for g in range(parquet.metadata.num_row_groups):
            group = parquet.read_row_group(g, columns=names)
            size = group.num_rows
            parts: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
            for i, name, epoch in direct:
                column = group.column(name)
                got = pit_numpy.integer_array(column.cast(pa.int64()) if epoch else column)
                assert got is not None
                parts[i] = got
            del group
            take: np.ndarray | None = None
            if filtering:
                assert row_filter is not None
                (key, key_ok), (ts, ts_ok) = parts[0], parts[1]
                mask = row_filter.keep(key, ts)
                for ok in (key_ok, ts_ok):
                    if ok is not None:
                        mask &= ok
                take = np.flatnonzero(mask)
                kept.append(take + start)
            for i, (part, ok) in parts.items():
                if take is not None:
                    part, ok = part[take], (ok[take] if ok is not None and i > 1 else None)
                n = len(part)
                values[i][at:at + n] = part
                if ok is not None:
                    valid.setdefault(i, np.ones(total, dtype=bool))[at:at + n] = ok
            at += len(take) if take is not None else size
            start += size
    for i, _, _ in direct:
        out[i] = (values[i][:at], valid[i][:at] if i in valid else None)
    return out, (np.concatenate(kept) if filtering else None)


def _file_row_ids(view: ViewQuery) -> np.ndarray:
    """Row id of each row of the view's files, in file order."""
    parts = [(index << FID_SHIFT) + np.arange(pq.ParquetFile(path).metadata.num_rows, dtype=np.int64)
             for index, path in enumerate(view.files)]
    return np.concatenate(parts)


def gather(view: ViewQuery, aliases: dict[str, str], fid: np.ndarray) -> pa.Table:
    """The view's features for each entity row: the row ``fid`` names, or nulls where it is -1.

    Reads each Parquet file in batches of row groups (about ``GATHER_BYTES`` of the wanted columns
    at a time) and takes the wanted rows, so memory stays bounded whatever the file size.
    """
    n = len(fid)
    names = list(view.features)
    if len(view.files) == 1:
        parquet = pq.ParquetFile(view.files[0])
        present = [f for f in names if f in parquet.schema_arrow.names]
        if len(_row_group_batches(parquet, present)) == 1:
            # the whole file's wanted columns fit one batch: one take per column, in entity order
            table = parquet.read(columns=present) if present else pa.table({})
            index = pa.array(fid, mask=fid < 0)
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                columns = dict(zip(present, pool.map(lambda f: table.column(f).take(index), present), strict=True))
            return pa.table({aliases[f]: columns[f] if f in columns else pa.nulls(n) for f in names})
    pieces: dict[str, list[pa.Array]] = {f: [] for f in names}
    where: list[np.ndarray] = []
    hit = np.flatnonzero(fid >= 0)
    file_of = fid[hit] >> FID_SHIFT
    for index, path in enumerate(view.files):
        mine = hit[file_of == index] if len(view.files) > 1 else hit
        if len(mine) == 0:
            continue
        local = fid[mine] & ((1 << FID_SHIFT) - 1)
        parquet = pq.ParquetFile(path)
        present = [f for f in names if f in parquet.schema_arrow.names]
        for lo, hi, groups in _row_group_batches(parquet, present):
            inside = np.flatnonzero((local >= lo) & (local < hi)) if (lo, hi) != (0, parquet.metadata.num_rows) else None
            rows = local if inside is None else local[inside]
            at = mine if inside is None else mine[inside]
            if len(at) == 0:
                continue
            batch = parquet.read_row_groups(groups, columns=present) if present else None
            taken = batch.take(pa.array(rows - lo)) if batch is not None else None
            where.append(at)
            for f in names:
                col = taken.column(f).combine_chunks() if taken is not None and f in present else pa.nulls(len(at))
                pieces[f].append(col)
            del batch, taken
    slot = np.full(n, -1, dtype=np.int64)
    if where:
        placed = np.concatenate(where)
        slot[placed] = np.arange(len(placed), dtype=np.int64)
    index_arr = pa.array(slot, mask=slot < 0)
    out = {}
    for f in names:
        parts = pieces[f]
        typ = _common_type([p.type for p in parts])
        values = pa.concat_arrays([p.cast(typ) for p in parts]) if parts else pa.nulls(0)
        out[aliases[f]] = values.take(index_arr)
    return pa.table(out)


def _common_type(types: list[pa.DataType]) -> pa.DataType:
    """One type all parts cast to (they differ only when files disagree); null if nothing was read."""
    real = [t for t in types if not pa.types.is_null(t)]
    if not real:
        return pa.null()
    if all(t == real[0] for t in real):
        return real[0]
    schema = pa.unify_schemas([pa.schema([("c", t)]) for t in real], promote_options="permissive")
    return schema.field("c").type


def _row_group_batches(parquet: pq.ParquetFile, columns: list[str]) -> list[tuple[int, int, list[int]]]:
    """Consecutive row groups in batches of about ``GATHER_BYTES`` of ``columns``: (first row, end row, groups)."""
    meta = parquet.metadata
    wanted = set(columns)
    batches: list[tuple[int, int, list[int]]] = []
    lo = start = size = 0
    groups: list[int] = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        bytes_ = sum(rg.column(c).total_uncompressed_size for c in range(rg.num_columns)
                     if rg.column(c).path_in_schema in wanted)
        if groups and size + bytes_ > GATHER_BYTES:
            batches.append((start, lo, groups))
            start, size, groups = lo, 0, []
        groups.append(g)
        size += bytes_
        lo += rg.num_rows
    if groups or not batches:
        batches.append((start, lo, groups))
    return batches
