"""WAL switching survives another connection holding the file's lock (the concurrent-open race)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from pitstop.sqlite_wal import enable_wal


def test_wal_switch_waits_for_an_exclusive_lock_held_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    # timeout=0: SQLite's own busy handler gives up at once, so only enable_wal's retry can succeed.
    opener = sqlite3.connect(path, isolation_level=None, timeout=0)
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        enable_wal(opener, timeout=10)
    finally:
        release.join()
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    opener.close()


def test_wal_switch_gives_up_at_the_deadline(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(opener, timeout=0.2)
    holder.execute("COMMIT")
    holder.close()
    opener.close()
