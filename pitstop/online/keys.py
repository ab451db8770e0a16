"""Online-store key encoding: which stored object holds an entity's values.

An entity key (the values of some join keys) is encoded as its *entity part*::

    driver_id=i1001                       one integer join key
    driver_id=i1,rider_id=s3:a}b          composite: components sorted by join-key name

Each component is ``<name>=<type><value>``: type ``i`` is an integer in decimal; type ``s`` is
a string as ``<length>:<escaped>`` where ``%`` and ``}`` are percent-escaped and the length counts
the escaped bytes. Redis keys wrap the entity part in a Cluster hash tag::

    ps1:<project>:{<entity part>}         one Redis hash; field = view name, value = codec record
    ps1:<project>:__generation__          the project's generation marker (a string, no expiry)

Invariants:
  * Injective: different (join-key names, values) give different entity parts, so (1, 23) and
    (12, 3) never collide, nor do two entities whose values match but whose key columns differ.
    Integers of any width encode alike (an int32 1001 equals an int64 1001); strings never equal
    integers.
  * The entity part never contains ``}``, so the hash tag spans all of it: every view of an entity
    lives in one hash, in one Cluster slot.
  * Project names and join-key names are percent-escaped outside ``[A-Za-z0-9_.-]``, so a key never
    holds a glob character before the tag and ``ps1:<project>:{*`` matches exactly one project.
  * ``ps1`` versions the scheme; a new scheme gets a new prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pitstop.errors import EntityKeyError

__all__ = [
    "KEY_PREFIX",
    "encode_entity_parts",
    "encode_entity_value",
    "generation_key",
    "project_prefix",
    "redis_key_array",
    "redis_keys",
]

KEY_PREFIX = "ps1"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
# Below this many rows, plain Python formatting beats launching Arrow kernels.
_VECTOR_MIN_ROWS = 64


def _escape_name(text: str) -> str:
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def project_prefix(project: str) -> str:
    """``ps1:<project>:`` — the start of every Redis key of ``project``."""
    return f"{KEY_PREFIX}:{_escape_name(project)}:"


def generation_key(project: str) -> str:
    """``ps1:<project>:__generation__``: the Redis key of the project's generation marker.

    It has no ``{`` after the prefix, so view deletion (which scans ``ps1:<project>:{*``) never touches it.
    """
    return f"{project_prefix(project)}__generation__"


def encode_entity_value(value: object) -> str:
    """The typed encoding of one join-key value (``i1001`` or ``s5:alice``)."""
    if isinstance(value, bool) or value is None:
        raise EntityKeyError(f"join-key value {value!r} is not an integer or a string")
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, str):
        escaped = value.replace("%", "%25").replace("}", "%7D")
        return f"s{len(escaped.encode())}:{escaped}"
    raise EntityKeyError(f"join-key value {value!r} of type {type(value).__name__} is not an integer or a string")


def encode_entity_parts(table: pa.Table, join_keys: Sequence[str]) -> list[bytes]:
    """The entity part of each row of ``table`` for the join keys ``join_keys`` (in any order), UTF-8.

    Raises:
        EntityKeyError: a join-key column is missing, holds nulls, or is neither integer nor string.
    """
    return _encode(table, join_keys, "", "")


def redis_keys(project: str, table: pa.Table, join_keys: Sequence[str]) -> list[bytes]:
    """The Redis hash key ``ps1:<project>:{<entity part>}`` of each row of ``table``.

    Raises:
        EntityKeyError: as ``encode_entity_parts``.
    """
    return _encode(table, join_keys, f"{project_prefix(project)}{{", "}")


def redis_key_array(project: str, table: pa.Table, join_keys: Sequence[str]) -> pa.Array:
    """``redis_keys`` as an Arrow string array, built with vectorized kernels (for bulk writes).

    Raises:
        EntityKeyError: as ``encode_entity_parts``.
    """
    names, columns = _key_columns(table, join_keys)
    return _encode_arrow(names, columns, f"{project_prefix(project)}{{", "}")


def _encode(table: pa.Table, join_keys: Sequence[str], head: str, tail: str) -> list[bytes]:
    names, columns = _key_columns(table, join_keys)
    if table.num_rows < _VECTOR_MIN_ROWS:
        return _encode_python(names, columns, head, tail)
    return _encode_arrow(names, columns, head, tail).cast(pa.binary()).to_pylist()


def _key_columns(table: pa.Table, join_keys: Sequence[str]) -> tuple[list[str], list[pa.Array]]:
    names = sorted(join_keys)
    if not names:
        raise EntityKeyError("a view needs at least one join key to be stored online")
    columns = []
    for name in names:
        if name not in table.column_names:
            raise EntityKeyError(f"entity rows lack join key {name!r} (columns: {', '.join(table.column_names)})")
        chunked = table.column(name)
        col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        if col.null_count:
            raise EntityKeyError(f"join key {name!r} is null in {col.null_count} entity row(s)")
        if not (pa.types.is_integer(col.type) or pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise EntityKeyError(f"join key {name!r} has type {col.type}; online keys must be integers or strings")
        columns.append(col)
    return names, columns


def _encode_python(names: list[str], columns: list[pa.Array], head: str, tail: str) -> list[bytes]:
    heads = [f"{_escape_name(name)}=" for name in names]
    per_column = [[h + encode_entity_value(v) for v in col.to_pylist()] for h, col in zip(heads, columns, strict=True)]
    return [f"{head}{','.join(parts)}{tail}".encode() for parts in zip(*per_column, strict=True)]


def _encode_arrow(names: list[str], columns: list[pa.Array], head: str, tail: str) -> pa.Array:
    pieces: list[pa.Array | str] = []
    for k, (name, col) in enumerate(zip(names, columns, strict=True)):
        lead = (head if k == 0 else ",") + f"{_escape_name(name)}="
        if pa.types.is_integer(col.type):
            pieces += [lead + "i", col.cast(pa.string())]
        else:
            escaped = pc.replace_substring(pc.replace_substring(col.cast(pa.string()), "%", "%25"), "}", "%7D")
            pieces += [lead + "s", pc.binary_length(escaped).cast(pa.string()), ":", escaped]
    pieces.append(tail)
    arrays = [p if isinstance(p, pa.Array) else pa.scalar(p, pa.string()) for p in pieces]
    return pc.binary_join_element_wise(*arrays, "")
