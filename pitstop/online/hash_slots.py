"""Redis Cluster hash slots of many keys at once: CRC16 (XMODEM) of the hash tag, modulo 16384.

pitstop's Redis keys are ``<prefix>{<entity part>}`` with no ``{`` in the prefix and no ``}`` in
the entity part (see ``keys``), so the hash tag is exactly the bytes between the first ``{`` and
the final ``}``. The vectorized CRC advances every key one byte per step, so a million keys cost
a few dozen numpy passes rather than a million Python calls.
"""

from __future__ import annotations

import binascii

import numpy as np
import pyarrow as pa

__all__ = ["SLOTS", "hash_slots", "key_slot"]

SLOTS = 16384
# crc_hqx of a single byte from 0 is the table entry of the byte-at-a-time CRC16-CCITT/XMODEM.
_BLOCK = 65536
_TABLE = np.array([binascii.crc_hqx(bytes([i]), 0) for i in range(256)], dtype=np.uint32)


def key_slot(key: bytes) -> int:
    """The slot of one pitstop key (its hash tag is everything between ``{`` and the last byte)."""
    start = key.index(b"{") + 1
    return binascii.crc_hqx(key[start:-1], 0) % SLOTS


def hash_slots(keys: pa.Array, tag_start: int) -> np.ndarray:
    """The slot of every key in ``keys`` (Arrow strings, no nulls), whose tags begin at ``tag_start``.

    Every key must be ``<tag_start bytes>`` + tag + ``}``: the layout ``redis_key_array`` produces
    for one project.
    """
    if keys.type != pa.string():
        keys = keys.cast(pa.string())
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, offsets_buf, data_buf = keys.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=keys.offset * 4).astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    begins = offsets[:-1] + tag_start
    lengths = offsets[1:] - 1 - begins
    slots = np.empty(n, dtype=np.int64)
    for lo in range(0, n, _BLOCK):  # blocks keep the temporaries in cache
        hi = min(lo + _BLOCK, n)
        slots[lo:hi] = _crc_block(data, begins[lo:hi], lengths[lo:hi]) % SLOTS
    return slots


def _crc_block(data: np.ndarray, begins: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    crc = np.zeros(len(begins), dtype=np.uint32)
    shortest, longest = int(lengths.min()), int(lengths.max())
    for j in range(longest):
        if j < shortest:  # every key still has a byte here
            byte = data[begins + j]
            crc = ((crc << 8) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
        else:
            live = np.nonzero(lengths > j)[0]
            c = crc[live]
            byte = data[begins[live] + j]
            crc[live] = ((c << 8) ^ _TABLE[((c >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc
