"""Open the registry named by the settings (``registry.path``).

Accepted values:
  * a file path (``data/registry.db``; relative to the repo directory) → ``SQLiteRegistry``, the default;
  * ``postgresql://user@host:5432/db`` (or ``postgres://``) → ``PostgresRegistry``, shared by every
    host of a deployment; rows are scoped to the settings' ``project``.

psycopg is imported only when a PostgreSQL URL is used (it is the ``postgres`` extra).
"""

from __future__ import annotations

from pitstop.registry.base import Registry
from pitstop.settings import Settings

__all__ = ["is_postgres_url", "open_registry"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(value: str) -> bool:
    """Whether ``value`` (a ``registry.path`` setting) names a PostgreSQL database rather than a file."""
    return value.strip().lower().startswith(_POSTGRES_SCHEMES)


def open_registry(settings: Settings) -> Registry:
    """The registry for ``settings``: SQLite file by default, PostgreSQL for a ``postgresql://`` URL.

    Raises:
        ConfigError: a PostgreSQL URL is given but psycopg is not installed.
        RegistryError: the registry cannot be opened (the message names the file, or the URL without its password).
    """
    value = settings.registry.path
    if is_postgres_url(value):
        from pitstop.registry.postgres import PostgresRegistry

        return PostgresRegistry(value.strip(), settings.project)
    from pitstop.registry.sqlite import SQLiteRegistry

    return SQLiteRegistry(settings.registry_path)
