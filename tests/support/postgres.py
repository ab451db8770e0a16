"""A throwaway PostgreSQL database for tests: created for one test session and dropped after it.

Test folders that need it import the session fixture ``postgres_url`` into their conftest (or module).
The server is the local one (``scripts/setup.sh`` installs and starts it), reached over its Unix
socket as the current OS user; ``PITSTOP_TEST_POSTGRES_URL`` points the tests at another server
(an admin URL of a role that may create databases). Only databases named ``pitstop_test_*`` that
this module created are ever dropped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

__all__ = ["ADMIN_URL_VAR", "ServerMissingError", "admin_url", "postgres_url", "scratch_database", "with_database"]

ADMIN_URL_VAR = "PITSTOP_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql:///postgres?host=/var/run/postgresql"
SETUP_HINT = f"run `bash scripts/setup.sh` (it installs and starts PostgreSQL) or set {ADMIN_URL_VAR}"


class ServerMissingError(RuntimeError):
    """No PostgreSQL server answers at the admin URL."""


def admin_url() -> str:
    """The URL tests use to create and drop their databases."""
    return os.environ.get(ADMIN_URL_VAR) or DEFAULT_ADMIN_URL


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` instead of its own."""
    parts = urlsplit(url)  # not urlunsplit: it turns "postgresql:///db" (no host) into "postgresql:/db"
    return f"{parts.scheme}://{parts.netloc}/{database}" + (f"?{parts.query}" if parts.query else "")


@contextmanager
def scratch_database(url: str | None = None) -> Iterator[str]:
    """Create ``pitstop_test_<random>`` and yield its URL; drop it (closing its connections) afterwards.

    Raises:
        ServerMissingError: the server cannot be reached (the message says how to set it up).
    """
    import psycopg
    from psycopg import sql

    admin = url or admin_url()
    name = f"pitstop_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise ServerMissingError(f"cannot reach PostgreSQL for the tests: {exc}; {SETUP_HINT}") from None
    try:
        yield with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a database created for this test session on the local PostgreSQL, dropped afterwards."""
    database = scratch_database()
    try:
        url = database.__enter__()
    except ServerMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        database.__exit__(None, None, None)
