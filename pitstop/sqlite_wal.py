"""Open SQLite files in WAL mode safely when several processes open the same new file at once."""

from __future__ import annotations

import random
import sqlite3
import time


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put ``conn``'s database in WAL mode, waiting up to ``timeout`` seconds for other openers.

    Switching a file to WAL needs an exclusive lock, and SQLite answers "database is locked" at
    once (without calling the busy handler) when another connection holds or is taking it: two
    processes opening the same new file race here. The mode is stored in the file, so it is
    only switched when it is not WAL already, and a locked switch is retried until the deadline.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() >= deadline:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.2)
