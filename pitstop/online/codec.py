"""Binary records: one view's feature values for one entity, plus the times the write guard compares.

Record layout, version 1 (all offsets in bytes)::

    0      u8      format version (1)
    1..8   u64 BE  event_us   XOR 2**63   (signed order == unsigned big-endian order)
    9..16  u64 BE  created_us XOR 2**63
    17..20 u32 BE  schema fingerprint (crc32 of the view's "name:dtype" list)
    21..   bitmap  validity, one bit per feature in schema order, least significant bit first
           fixed   fixed-width features in schema order, little-endian; a null slot holds zeros
           var     per variable-width feature in schema order: u32 LE length + payload (empty when null)

Invariants:
  * Bytes 0..16 keep this meaning in every future version: the online stores' write guard reads
    the two timestamps there without knowing the rest of the format.
  * A record whose fingerprint differs from the reader's schema was written for another shape of
    the view; decoding reports it as not found instead of misreading it.
  * Fixed-width dtypes are Int64, Int32, Float64, Float32, Bool (1 byte) and Timestamp (int64 µs,
    UTC). String payloads are UTF-8. An Array payload is ``u32 LE count, u8 has_nulls,
    [validity bitmap if has_nulls], elements`` where elements are fixed-width slots or, for
    Array(String), u32-length-prefixed UTF-8 strings.

Encoding of fixed-width columns is vectorized: one packed numpy structured array whose memory is
the records back to back. Only variable-width features loop in Python.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pitstop.definitions.dtypes import DType
from pitstop.errors import OnlineStoreError

__all__ = ["FORMAT_VERSION", "HEADER_SIZE", "Decoded", "Records", "RecordLayout", "layout_for", "stamp_bytes"]

FORMAT_VERSION = 1
HEADER_SIZE = 21
_SIGN = np.uint64(1 << 63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_U32 = struct.Struct("<I")
_FIXED_NUMPY: dict[str, str] = {
    "Int64": "<i8",
    "Int32": "<i4",
    "Float64": "<f8",
    "Float32": "<f4",
    "Bool": "u1",
    "Timestamp": "<i8",
}
_HEADER_DTYPE = np.dtype([("version", "u1"), ("event", ">u8"), ("created", ">u8"), ("fingerprint", ">u4")])
# Many-row decodes go through numpy; a handful of records decode faster with struct.
_NUMPY_DECODE_MIN_ROWS = 32


def _is_fixed(dtype: DType) -> bool:
    return dtype.element is None and dtype.name in _FIXED_NUMPY


def stamp_bytes(event_us: int, created_us: int) -> bytes:
    """The 16 guard bytes of a record with these times (what ``record[1:17]`` holds)."""
    return ((event_us ^ (1 << 63)) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big") + (
        (created_us ^ (1 << 63)) & 0xFFFFFFFFFFFFFFFF
    ).to_bytes(8, "big")


@dataclass
class Records:
    """Encoded records of many entities, concatenated.

    Attributes:
        data: every record back to back.
        offsets: int64 array of ``n + 1`` boundaries; record ``i`` is ``data[offsets[i]:offsets[i+1]]``.
        width: the common record length when every record has the same length, else None.
    """

    data: bytes | memoryview
    offsets: np.ndarray
    width: int | None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def record(self, i: int) -> bytes:
        """Record ``i`` as bytes."""
        return bytes(self.data[int(self.offsets[i]) : int(self.offsets[i + 1])])

    def to_list(self) -> list[bytes]:
        """Every record as its own bytes object."""
        data = self.data if isinstance(self.data, bytes) else self.data.tobytes()
        if self.width is not None:
            w = self.width
            return [data[i : i + w] for i in range(0, len(data), w)]
        bounds = self.offsets.tolist()
        return [data[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@dataclass
class Decoded:
    """Per record (in input order): whether a usable value exists, its event time, and feature values.

    ``values[feature][i]`` is a Python value as Arrow's ``to_pylist`` gives for the feature's
    dtype (``datetime`` in UTC for Timestamp, ``list`` for Array), or None when null or not found.
    """

    found: list[bool]
    event_us: list[int]
    values: dict[str, list[Any]]


class RecordLayout:
    """Encoder/decoder for the records of one view schema (build with ``layout_for``)."""

    def __init__(self, features: tuple[tuple[str, DType], ...]) -> None:
        if not features:
            raise ValueError("a record layout needs at least one feature")
        self.features = features
        self.names = [name for name, _ in features]
        self.index = {name: i for i, name in enumerate(self.names)}
        signature = ";".join(f"{name}:{dtype}" for name, dtype in features)
        self.fingerprint = zlib.crc32(signature.encode())
        self.fingerprint_bytes = self.fingerprint.to_bytes(4, "big")
        self.bitmap_size = (len(features) + 7) // 8
        self._all_valid = np.packbits(np.ones(len(features), dtype=bool), bitorder="little")
        self.fixed = [(name, dtype) for name, dtype in features if _is_fixed(dtype)]
        self.var = [(name, dtype) for name, dtype in features if not _is_fixed(dtype)]
        fields: list[tuple[Any, ...]] = [
            ("version", "u1"),
            ("event", ">u8"),
            ("created", ">u8"),
            ("fingerprint", ">u4"),
            ("bitmap", "u1", (self.bitmap_size,)),
        ]
        fields += [(f"f_{name}", _FIXED_NUMPY[dtype.name]) for name, dtype in self.fixed]
        self.prefix_dtype = np.dtype(fields)  # packed: no alignment padding
        self.prefix_size = self.prefix_dtype.itemsize
        self._var_names = {name for name, _ in self.var}
        fixed_slot = {name: k for k, (name, _) in enumerate(self.fixed)}
        # feature -> (validity bit, slot in the fixed struct or -1 when variable-width, converter)
        self._slots: dict[str, tuple[int, int, Any]] = {
            name: (1 << i, fixed_slot.get(name, -1), _CONVERT.get(dtype.name) if dtype.element is None else None)
            for i, (name, dtype) in enumerate(features)
        }
        self._prefix_struct = struct.Struct(
            "<" + "".join(_STRUCT_CODES[dtype.name] for _, dtype in self.fixed)
        )

    # ---------------------------------------------------------------- encode

    def encode(self, values: pa.Table, event_us: np.ndarray, created_us: np.ndarray) -> Records:
        """Encode one record per row of ``values`` (a column per feature, named as in the schema).

        Raises:
            OnlineStoreError: a feature column is missing or cannot be cast to its dtype.
        """
        n = values.num_rows
        if len(event_us) != n or len(created_us) != n:
            raise OnlineStoreError(f"{n} value rows but {len(event_us)} event and {len(created_us)} created times")
        columns = {name: self._column(values, name, dtype) for name, dtype in self.features}
        prefix = np.empty(n, dtype=self.prefix_dtype)  # every byte is assigned below
        prefix["version"] = FORMAT_VERSION
        prefix["event"] = np.asarray(event_us, dtype=np.int64).view(np.uint64) ^ _SIGN
        prefix["created"] = np.asarray(created_us, dtype=np.int64).view(np.uint64) ^ _SIGN
        prefix["fingerprint"] = self.fingerprint
        if any(col.null_count for col in columns.values()):
            valid = np.ones((n, len(self.features)), dtype=bool)
            for i, (name, _) in enumerate(self.features):
                col = columns[name]
                if col.null_count:
                    valid[:, i] = col.is_valid().to_numpy(zero_copy_only=False)
            prefix["bitmap"] = np.packbits(valid, axis=1, bitorder="little").reshape(n, self.bitmap_size)
        else:
            prefix["bitmap"] = self._all_valid
        for name, dtype in self.fixed:
            prefix[f"f_{name}"] = _fixed_numpy(columns[name], dtype)
        # A view of the array's memory, not a copy: records of 1M entities are ~100 MB.
        fixed_bytes = prefix.view(np.uint8).data
        w = self.prefix_size
        if not self.var:
            return Records(fixed_bytes, np.arange(n + 1, dtype=np.int64) * w, w)
        var_parts = [_var_payloads(columns[name], dtype) for name, dtype in self.var]
        fixed_copy = prefix.tobytes()
        pieces: list[bytes] = []
        lengths = np.empty(n, dtype=np.int64)
        for i in range(n):
            record = fixed_copy[i * w : (i + 1) * w] + b"".join([part[i] for part in var_parts])
            pieces.append(record)
            lengths[i] = len(record)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return Records(b"".join(pieces), offsets, None)

    def _column(self, values: pa.Table, name: str, dtype: DType) -> pa.Array:
        if name not in values.column_names:
            raise OnlineStoreError(f"feature {name!r} is missing from the values to write (columns: {values.column_names})")
        chunked = values.column(name)
        col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        target = dtype.to_arrow()
        if not col.type.equals(target):
            try:
                col = col.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise OnlineStoreError(f"feature {name!r}: cannot store {col.type} values as {dtype}: {exc}") from None
        return col

    # ---------------------------------------------------------------- decode

    def decode(self, records: Sequence[bytes | None], features: Sequence[str]) -> Decoded:
        """Decode ``records`` (None = absent) into per-feature lists for ``features``.

        Raises:
            KeyError: a requested feature is not in the schema.
            OnlineStoreError: a record has a format version this pitstop does not know (written by a newer one).
        """
        for name in features:
            if name not in self.index:
                raise KeyError(name)
        n = len(records)
        present = [i for i, rec in enumerate(records) if rec is not None and len(rec) >= HEADER_SIZE]
        rows = [records[i] for i in present]
        if len(rows) < _NUMPY_DECODE_MIN_ROWS:
            return self._decode_small(n, present, rows, features)  # type: ignore[arg-type]
        return self._decode_many(n, present, rows, features)  # type: ignore[arg-type]

    def _decode_small(self, n: int, present: list[int], rows: list[bytes], features: Sequence[str]) -> Decoded:
        # The serving path (a few entities per request): plain struct, no numpy call overhead.
        found = [False] * n
        event_us = [0] * n
        plan = [(name, [None] * n, *self._slots[name]) for name in features]
        want_var = any(slot < 0 for _, _, _, slot, _ in plan)
        bitmap_end = HEADER_SIZE + self.bitmap_size
        for pos, rec in zip(present, rows, strict=True):
            if not self._usable(rec):
                continue
            found[pos] = True
            event_us[pos] = int.from_bytes(rec[1:9], "big") - (1 << 63)
            bits = int.from_bytes(rec[HEADER_SIZE:bitmap_end], "little")
            unpacked = self._prefix_struct.unpack_from(rec, bitmap_end)
            var = self._var_values(rec) if want_var else {}
            for name, column, bit, slot, convert in plan:
                if bits & bit:
                    value = unpacked[slot] if slot >= 0 else var[name]
                    column[pos] = value if convert is None else convert(value)
        return Decoded(found, event_us, {name: column for name, column, *_ in plan})

    def _decode_many(self, n: int, present: list[int], rows: list[bytes], features: Sequence[str]) -> Decoded:
        heads = np.frombuffer(b"".join([rec[:HEADER_SIZE] for rec in rows]), dtype=_HEADER_DTYPE)
        unknown = heads["version"] != FORMAT_VERSION
        if unknown.any():
            self._check_version(int(heads["version"][unknown][0]))
        usable_mask = heads["fingerprint"] == self.fingerprint
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        # A record of this schema is exactly prefix_size long when it has no variable-width part.
        usable_mask &= (lengths >= self.prefix_size) if self.var else (lengths == self.prefix_size)
        usable = np.flatnonzero(usable_mask).tolist()
        positions = [present[k] for k in usable]
        kept = [rows[k] for k in usable]
        found = [False] * n
        event_us = [0] * n
        events = (heads["event"][usable_mask].astype(np.uint64) ^ _SIGN).view(np.int64).tolist()
        for pos, ev in zip(positions, events, strict=True):
            found[pos] = True
            event_us[pos] = ev
        values: dict[str, list[Any]] = {}
        every_row = len(positions) == n
        if kept:
            w = self.prefix_size
            prefix = np.frombuffer(b"".join(kept) if not self.var else b"".join([r[:w] for r in kept]), dtype=self.prefix_dtype)
            valid = np.unpackbits(prefix["bitmap"], axis=1, bitorder="little", count=len(self.features)).astype(bool)
        var_rows = [self._var_values(rec) for rec in kept] if any(name in self._var_names for name in features) else []
        for name in features:
            fi = self.index[name]
            dtype = self.features[fi][1]
            if not kept:
                values[name] = [None] * n
                continue
            if name in self._var_names:
                column = [row[name] for row in var_rows]
            elif dtype.name == "Timestamp":
                column = pa.array(prefix[f"f_{name}"], type=pa.int64()).cast(dtype.to_arrow()).to_pylist()
            elif dtype.name == "Bool":
                column = prefix[f"f_{name}"].astype(bool).tolist()
            else:
                column = prefix[f"f_{name}"].tolist()
            ok = valid[:, fi]
            if every_row and ok.all():
                values[name] = column
                continue
            out: list[Any] = [None] * n
            for pos, value, is_valid in zip(positions, column, ok.tolist(), strict=True):
                if is_valid:
                    out[pos] = value
            values[name] = out
        return Decoded(found, event_us, values)

    def _check_version(self, version: int) -> None:
        raise OnlineStoreError(
            f"online record format version {version} is unknown to this pitstop (knows {FORMAT_VERSION}); upgrade pitstop"
        )

    def _usable(self, rec: bytes) -> bool:
        """Whether ``rec`` (at least a header long) holds a value of this schema."""
        if rec[0] != FORMAT_VERSION:
            self._check_version(rec[0])
        if rec[17:21] != self.fingerprint_bytes:
            return False  # written for another schema of this view: not a value of this one
        return len(rec) >= self.prefix_size and (bool(self.var) or len(rec) == self.prefix_size)

    def _valid(self, rec: bytes, feature_index: int) -> bool:
        return bool(rec[HEADER_SIZE + feature_index // 8] >> (feature_index % 8) & 1)

    def _var_values(self, rec: bytes) -> dict[str, Any]:
        """Every variable-width feature of ``rec`` (None where null)."""
        out: dict[str, Any] = {}
        offset = self.prefix_size
        for name, dtype in self.var:
            (length,) = _U32.unpack_from(rec, offset)
            offset += 4
            valid = self._valid(rec, self.index[name])
            out[name] = _decode_var_value(rec[offset : offset + length], dtype) if valid else None
            offset += length
        return out

_LAYOUTS: dict[tuple[tuple[str, int], ...], tuple[tuple[tuple[str, DType], ...], RecordLayout]] = {}


def layout_for(features: tuple[tuple[str, DType], ...]) -> RecordLayout:
    """The (cached) record layout of a view with these features in schema order.

    Looked up first by feature names and dtype *identities*: callers rebuild the features tuple
    per request from long-lived dtype objects, and hashing pydantic dtypes costs about a
    microsecond each. An entry keeps its dtypes alive, so an id in the cache is never reused.
    """
    key = tuple([(name, id(dtype)) for name, dtype in features])
    hit = _LAYOUTS.get(key)
    if hit is not None:
        return hit[1]
    layout = _layout_by_value(features)
    if len(_LAYOUTS) >= 4096:
        _LAYOUTS.clear()
    _LAYOUTS[key] = (features, layout)
    return layout


@lru_cache(maxsize=1024)
def _layout_by_value(features: tuple[tuple[str, DType], ...]) -> RecordLayout:
    return RecordLayout(features)


# ------------------------------------------------------------------ helpers

_STRUCT_CODES = {"Int64": "q", "Int32": "i", "Float64": "d", "Float32": "f", "Bool": "B", "Timestamp": "q"}


def _timestamp_from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


_CONVERT = {"Timestamp": _timestamp_from_us, "Bool": bool}


def _fixed_numpy(col: pa.Array, dtype: DType) -> np.ndarray:
    """Column values as numpy with nulls replaced by zeros (the bitmap records them)."""
    if dtype.name == "Timestamp":
        col = col.cast(pa.int64())
    if col.null_count:
        col = pc.fill_null(col, pa.scalar(False if dtype.name == "Bool" else 0, type=col.type))
    return col.to_numpy(zero_copy_only=False)


def _var_payloads(col: pa.Array, dtype: DType) -> list[bytes]:
    """Length-prefixed payload of each row of a variable-width column (empty payload when null)."""
    if dtype.element is None:  # String
        return [_U32.pack(len(b)) + b for b in (b"" if s is None else s.encode() for s in col.to_pylist())]
    element = dtype.element
    row_valid = col.is_valid().to_numpy(zero_copy_only=False).tolist()
    absolute = col.offsets.to_numpy()
    # ``values`` ignores a slice of ``col``; narrow it to this slice's elements and rebase offsets.
    first = int(absolute[0]) if len(absolute) else 0
    flat = col.values.slice(first, int(absolute[-1]) - first if len(absolute) else 0)
    offsets = (absolute - first).tolist()
    elem_valid = flat.is_valid().to_numpy(zero_copy_only=False) if flat.null_count else None
    if _is_fixed(element):
        data = _fixed_numpy(flat, element).tobytes()
        width = np.dtype(_FIXED_NUMPY[element.name]).itemsize
        strings = None
    else:
        data, width = b"", 0
        strings = [b"" if s is None else s.encode() for s in flat.to_pylist()]
    out: list[bytes] = []
    for i, is_valid in enumerate(row_valid):
        if not is_valid:
            out.append(_U32.pack(0))
            continue
        a, b = offsets[i], offsets[i + 1]
        count = b - a
        body = [_U32.pack(count)]
        if elem_valid is not None and not elem_valid[a:b].all():
            body.append(b"\x01")
            body.append(np.packbits(elem_valid[a:b], bitorder="little").tobytes())
        else:
            body.append(b"\x00")
        if strings is None:
            body.append(data[a * width : b * width])
        else:
            body.extend(_U32.pack(len(s)) + s for s in strings[a:b])
        payload = b"".join(body)
        out.append(_U32.pack(len(payload)) + payload)
    return out


def _decode_var_value(payload: bytes, dtype: DType) -> Any:
    if dtype.element is None:
        return payload.decode()
    element = dtype.element
    (count,) = _U32.unpack_from(payload, 0)
    offset = 5
    valid: list[bool] | None = None
    if payload[4]:
        nbytes = (count + 7) // 8
        bits = np.unpackbits(np.frombuffer(payload, np.uint8, nbytes, offset), bitorder="little", count=count)
        valid = bits.astype(bool).tolist()
        offset += nbytes
    if _is_fixed(element):
        items = np.frombuffer(payload, _FIXED_NUMPY[element.name], count, offset)
        if element.name == "Timestamp":
            values = pa.array(items, type=pa.int64()).cast(element.to_arrow()).to_pylist()
        elif element.name == "Bool":
            values = items.astype(bool).tolist()
        else:
            values = items.tolist()
    else:
        values = []
        for _ in range(count):
            (length,) = _U32.unpack_from(payload, offset)
            offset += 4
            values.append(payload[offset : offset + length].decode())
            offset += length
    if valid is not None:
        values = [v if ok else None for v, ok in zip(values, valid, strict=True)]
    return values
