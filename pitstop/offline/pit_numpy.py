"""The point-in-time join for one integer join key, vectorized with numpy (no per-row Python).

Same rule as ``pit_sql`` (see its module doc). Invariant that makes it exact: a view's rows are
sorted by (key, event_ts, created_ts), all three packed or tie-broken losslessly, so for an entity
row (key, t) the candidates with ``event_ts <= t`` are one contiguous run ending at
``pos = searchsorted(rows, (key, t), "right") - 1``, and the best candidate is the *last* row of
that run with ``created_ts <= t`` (and ``event_ts >= t - ttl``). Usually that is ``pos`` itself;
rows whose ``pos`` was created after t walk back a bounded number of steps, and the few still
unsettled are handed back to the caller for the exact SQL join.

Key and time are packed into one int64 ``(key - kmin + 1) << tbits | (ts - tmin)`` only when the
value ranges fit in 63 bits (``Packing.fit``); otherwise the caller uses the SQL join.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

WALK_STEPS = 32
"""Backward steps tried for rows whose best event row was created too late, before giving up."""


def integer_array(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray | None] | None:
    """int64 values and a validity mask (None when all valid), or None if not an int64-safe integer type."""
    typ = column.type
    if not pa.types.is_integer(typ) or typ == pa.uint64():
        return None
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    valid = None
    if column.null_count:
        valid = np.asarray(column.is_valid())
        column = column.fill_null(0)
    return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), valid


@dataclass(frozen=True)
class SortedEntities:
    """Entity rows with a non-null key and time, sorted by (key, t); shared by all views."""

    key: np.ndarray
    t: np.ndarray
    row: np.ndarray
    """Original row index of each sorted entry."""


def sort_entities(key: np.ndarray, t: np.ndarray, valid: np.ndarray | None,
                  argsort: Callable[[np.ndarray], np.ndarray] = np.argsort) -> SortedEntities:
    """Sort entity rows by (key, t), dropping rows whose key or time is null.

    ``argsort`` orders an int64 array (the caller may pass a parallel sort).
    """
    rows = np.flatnonzero(valid) if valid is not None else np.arange(len(key), dtype=np.int64)
    if valid is not None:
        key, t = key[rows], t[rows]
    if len(key) == 0:
        return SortedEntities(key, t, rows)
    k0, t0 = int(key.min()), int(t.min())
    kbits, tbits = (int(key.max()) - k0).bit_length(), (int(t.max()) - t0).bit_length()
    if kbits + tbits <= 63:
        order = argsort(((key - k0) << tbits) | (t - t0))
    else:
        order = np.lexsort((t, key))
    return SortedEntities(key[order], t[order], rows[order])


@dataclass(frozen=True)
class RowFilter:
    """Which view rows can ever answer these entity rows: a key among theirs and an event time in
    ``[min t - ttl, max t]``. Dropping the rest before the sort is exact and makes it smaller.

    Key membership uses a bitmap over the entity keys' range, built only when that range is small
    (``MAX_BITMAP_SPAN``); otherwise only the time bounds apply.
    """

    kmin: int
    present: np.ndarray | None
    tlo: int | None
    thi: int

    @staticmethod
    def of(ents: SortedEntities, ttl_us: int | None) -> RowFilter | None:
        if len(ents.key) == 0:
            return None
        kmin, kmax = int(ents.key[0]), int(ents.key[-1])
        present = None
        if kmax - kmin < MAX_BITMAP_SPAN:  # padded with False at both ends for clipped lookups
            present = np.zeros(kmax - kmin + 3, dtype=bool)
            present[ents.key - (kmin - 1)] = True
        tmin, tmax = int(ents.t.min()), int(ents.t.max())
        return RowFilter(kmin, present, tmin - ttl_us if ttl_us is not None else None, tmax)

    def keep(self, key: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Mask of the rows worth keeping (``key`` and ``ts`` as int64, nulls already excluded by the caller)."""
        mask = ts <= self.thi
        if self.tlo is not None:
            mask &= ts >= self.tlo
        if self.present is not None:
            offset = key - (self.kmin - 1)
            np.clip(offset, 0, len(self.present) - 1, out=offset)
            mask &= self.present.take(offset)
        return mask


MAX_BITMAP_SPAN = 1 << 28
"""Largest entity-key range (in key values) for which membership is checked with a bitmap (256 MB at most)."""


@dataclass(frozen=True)
class Packing:
    """How (key, ts) is packed into one int64 for one view."""

    kmin: int
    kmax: int
    tmin: int
    tmax: int
    tbits: int

    @staticmethod
    def fit(key: np.ndarray, ts: np.ndarray) -> Packing | None:
        """The packing for these (valid) values, or None if they need more than 63 bits."""
        if len(key) == 0:
            return None
        kmin, kmax, tmin, tmax = int(key.min()), int(key.max()), int(ts.min()), int(ts.max())
        tbits = (tmax - tmin).bit_length()
        if (kmax - kmin + 1).bit_length() + tbits > 63:
            return None
        return Packing(kmin, kmax, tmin, tmax, tbits)

    def pack_into(self, key: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """``pack``, overwriting ``key`` and ``ts`` (when writable) to save memory; returns the packed values."""
        if not (key.flags.writeable and ts.flags.writeable):
            return self.pack(key, ts)
        key -= self.kmin - 1
        key <<= self.tbits
        ts -= self.tmin
        key |= ts
        return key

    def pack(self, key: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Packed values; keys and times must lie inside the packing's ranges."""
        return ((key - (self.kmin - 1)) << self.tbits) | (ts - self.tmin)


@dataclass
class ViewRows:
    """A view's rows sorted by (key, event_ts, created_ts): packed values, created times, row ids."""

    packed: np.ndarray
    source: np.ndarray
    """Position of each sorted row in the arrays it was built from (its row id for a single file)."""
    packing: Packing
    created: np.ndarray | None = None

    @property
    def fid(self) -> np.ndarray:
        """Row ids, when positions are row ids; see ``use_row_ids`` otherwise."""
        return self.source

    def use_row_ids(self, fid: np.ndarray) -> None:
        """Replace positions by the row ids ``fid`` (indexed by position)."""
        self.source = fid[self.source]

    def add_created(self, created: np.ndarray) -> None:
        """Attach created times (indexed by position; call before ``use_row_ids``), settling ties by them."""
        self.created = created[self.source]
        _order_ties_by_created(self.packed, self.created, self.source)


def sort_view_rows(key: np.ndarray, ts: np.ndarray, valid: np.ndarray | None) -> ViewRows | None:
    """Sort a view's rows by (key, event_ts), leaving out invalid ones; None if packing does not fit.

    ``key`` and ``ts`` are overwritten when writable: the caller must not use them afterwards.
    """
    keep = np.flatnonzero(valid) if valid is not None else None
    if keep is not None:
        key, ts = key[keep], ts[keep]
    packing = Packing.fit(key, ts)
    if packing is None:
        return None
    packed = packing.pack_into(key, ts)
    del key, ts
    order = np.argsort(packed, kind="stable")  # rows often arrive grouped by key: runs make this cheap
    packed = packed[order]
    return ViewRows(packed, keep[order] if keep is not None else order, packing)


def _order_ties_by_created(packed: np.ndarray, created: np.ndarray, source: np.ndarray) -> None:
    """Within runs of equal (key, event_ts), reorder ``created`` and ``source`` by created, in place."""
    same = packed[1:] == packed[:-1]
    if not same.any():
        return
    at = np.flatnonzero(same)
    pos = np.union1d(at, at + 1)  # runs of equal packed values, contiguous and ascending
    sub = np.lexsort((created[pos], packed[pos]))
    created[pos] = created[pos][sub]
    source[pos] = source[pos][sub]


def match(ents: SortedEntities, rows: ViewRows, ttl_us: int | None, cutoff: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match entity rows to view rows.

    Returns (entity rows, their row ids) for the rows settled with a match, and the entity rows
    still unsettled (to be joined exactly elsewhere). Entity rows in neither have no match.
    """
    p = rows.packing
    n = len(ents.key)
    if n and ents.key[0] >= p.kmin and ents.key[-1] <= p.kmax and ents.t.min() >= p.tmin:
        sel, t, key = np.arange(n, dtype=np.int64), ents.t, ents.key  # the common case: no copies
    else:
        sel = np.flatnonzero((ents.key >= p.kmin) & (ents.key <= p.kmax) & (ents.t >= p.tmin))
        t, key = ents.t[sel], ents.key[sel]
    q = p.pack(key, np.minimum(t, p.tmax))
    pos = np.searchsorted(rows.packed, q, side="right") - 1
    hit = pos >= 0
    pos[~hit] = 0
    got = rows.packed[pos]
    hit &= (got >> p.tbits) == (q >> p.tbits)
    if ttl_us is not None:
        hit &= (got & ((1 << p.tbits) - 1)) + p.tmin >= t - ttl_us
    sel, t, pos, q = sel[hit], t[hit], pos[hit], q[hit]
    pending = np.empty(0, dtype=np.int64)
    if cutoff and rows.created is not None:
        late = rows.created[pos] > t
        if late.any():
            settled_sel, settled_pos, pending = _walk_back(rows, sel[late], t[late], pos[late], q[late], ttl_us)
            sel = np.concatenate([sel[~late], settled_sel])
            pos = np.concatenate([pos[~late], settled_pos])
    return ents.row[sel], rows.fid[pos], ents.row[pending]


def _walk_back(rows: ViewRows, sel: np.ndarray, t: np.ndarray, pos: np.ndarray, q: np.ndarray,
               ttl_us: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step back from ``pos`` to the last row of the same key created by t: (sel, pos) settled, pending sel."""
    p = rows.packing
    assert rows.created is not None
    code = q >> p.tbits
    floor = t - ttl_us if ttl_us is not None else None
    done_sel, done_pos = [], []
    for _ in range(max(WALK_STEPS, 1)):
        pos = pos - 1
        alive = pos >= 0
        pos[~alive] = 0
        got = rows.packed[pos]
        alive &= (got >> p.tbits) == code
        if floor is not None:
            alive &= (got & ((1 << p.tbits) - 1)) + p.tmin >= floor
        found = alive & (rows.created[pos] <= t)
        done_sel.append(sel[found])
        done_pos.append(pos[found])
        more = alive & ~found
        sel, t, pos, code = sel[more], t[more], pos[more], code[more]
        if floor is not None:
            floor = floor[more]
        if len(sel) == 0:
            break
    return np.concatenate(done_sel), np.concatenate(done_pos), sel
