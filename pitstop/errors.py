"""Exceptions raised by pitstop.

Every error pitstop raises on purpose derives from ``PitstopError``; several also derive from a
builtin so that existing ``except ValueError`` / ``except LookupError`` clauses keep working::

    PitstopError
    ├── ConfigError (ValueError)            pitstop.yaml or a PITSTOP_* variable is invalid
    ├── DefinitionError (ValueError)        a definition is invalid; names its file and line
    │   └── RepoLoadError                   a repo file could not be run or its objects clash
    ├── NotFoundError (LookupError)         a named thing does not exist (view, source, file, model)
    │   └── NotRegisteredError              a name is not in the registry (run `pitstop apply`)
    ├── RegistryError                       the registry cannot be read or written
    │   └── ApplyRefusedError               apply would break a dependent object
    ├── FeatureRefError (ValueError)        a "view:feature" reference is malformed or unknown
    ├── RetrievalError (ValueError)         entity rows or the requested features cannot be joined
    │   ├── InvalidValueError               a value does not fit its column's dtype, unit or time window
    │   └── EntityKeyError                  a join key is missing, null or of an unsupported type
    ├── OfflineStoreError                   the offline engine failed reading a source
    ├── OnlineStoreError                    the online store is unreachable or rejected a command
    ├── MaterializationError                a materialization run failed (watermarks left unmoved)
    ├── ModelRegistryError                  a model cannot be registered, found or loaded
    │   └── ArtifactIntegrityError          a stored artifact is missing or its sha256 does not match
    ├── AuthError                           missing or bad credentials (401), or a scope is lacking (403)
    └── IngestError                         stream ingestion failed; names topic, partition and offset
        ├── MessageDecodeError (ValueError) one message cannot be decoded or validated (dead-lettered)
        ├── StreamUnavailableError          the Kafka broker cannot be reached or refused a request
        └── CommitLostError                 a rebalance took the partitions before their offsets were committed

The families: bad input (ConfigError, DefinitionError, FeatureRefError, RetrievalError), not found
(NotFoundError), a dependency that is down (RegistryError, OfflineStoreError, OnlineStoreError,
StreamUnavailableError), and refusals (AuthError, ApplyRefusedError). The HTTP edge maps them to
422, 404, 503 and 401/403/409 (pitstop/serving/errors.py); the CLI to one red line and exit 1.

This module imports nothing else from pitstop, so any module may import it.
"""

from __future__ import annotations

__all__ = [
    "ApplyRefusedError",
    "ArtifactIntegrityError",
    "AuthError",
    "ConfigError",
    "CommitLostError",
    "DefinitionError",
    "EntityKeyError",
    "FeatureRefError",
    "IngestError",
    "InvalidValueError",
    "MessageDecodeError",
    "NotFoundError",
    "NotRegisteredError",
    "MaterializationError",
    "ModelRegistryError",
    "OfflineStoreError",
    "OnlineStoreError",
    "PitstopError",
    "RegistryError",
    "RepoLoadError",
    "RetrievalError",
    "StreamUnavailableError",
]


class PitstopError(Exception):
    """Base class of every error pitstop raises on purpose."""


class ConfigError(PitstopError, ValueError):
    """pitstop.yaml or a PITSTOP_* environment variable holds an invalid value."""


class MissingExtraError(ConfigError):
    """A feature needs an optional dependency group (an extra) that is not installed."""


class DefinitionError(PitstopError, ValueError):
    """A definition (entity, source, view, service) is invalid.

    The message starts with ``file:line`` of the definition when it is known.
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class RepoLoadError(DefinitionError):
    """A feature-repo file could not be run, or its definitions clash with each other."""


class RegistryError(PitstopError):
    """The registry could not be read or written."""


class NotFoundError(PitstopError, LookupError):
    """A named thing does not exist: a feature view, a source, an entity-rows file, a model."""


class NotRegisteredError(NotFoundError):
    """A named object is not in the registry."""


class ApplyRefusedError(RegistryError):
    """Applying the repo would remove or break an object that another registered object uses."""


class FeatureRefError(PitstopError, ValueError):
    """A feature reference is malformed or names an unknown view or feature."""


class RetrievalError(PitstopError, ValueError):
    """The entity rows or the feature list of a retrieval are invalid."""


class InvalidValueError(RetrievalError):
    """A value in entity rows, pushed rows or a message does not fit its column's dtype, unit or time window.

    Attributes:
        column: the column (or request field) holding the value.
        row: the value's row (0-based), when known.
        reason: what is wrong, quoting at most a short excerpt of the value.
    """

    def __init__(self, column: str, row: int | None, reason: str) -> None:
        self.column, self.row, self.reason = column, row, reason
        where = f"column {column!r}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {reason}")


class EntityKeyError(RetrievalError):
    """Entity rows cannot be turned into online-store keys (missing column, null, unsupported type)."""


class OfflineStoreError(PitstopError):
    """The offline engine failed to read a source or run a query."""


class OnlineStoreError(PitstopError):
    """The online store could not be reached or rejected a command; the message names its URL."""


class MaterializationError(PitstopError):
    """A materialization run failed; watermarks of the failed views were not moved."""


class ModelRegistryError(PitstopError):
    """A model could not be registered, found, aliased or loaded; the message says what to do."""


class ArtifactIntegrityError(ModelRegistryError):
    """A stored model artifact is missing or its content no longer matches the recorded sha256."""


class IngestError(PitstopError):
    """Stream ingestion failed; the message names the topic, and the partition and offset when known."""


class MessageDecodeError(IngestError, ValueError):
    """One Kafka message cannot be decoded or does not fit its feature view's schema.

    Attributes:
        topic, partition, offset: where the message is.
        reason: what is wrong with it, without the location (it goes to the dead-letter record).
    """

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        self.topic, self.partition, self.offset, self.reason = topic, partition, offset, reason
        super().__init__(f"{topic}[{partition}]@{offset}: {reason}")


class StreamUnavailableError(IngestError):
    """The Kafka broker cannot be reached, or refused a fetch, commit or produce; retried with backoff."""


class AuthError(PitstopError):
    """A request lacks valid credentials (``status`` 401) or a scope its route needs (403).

    Attributes:
        status: 401 or 403.
        scope: the scope that was needed (403 only).
    """

    def __init__(self, status: int, message: str, scope: str | None = None) -> None:
        self.status, self.scope = status, scope
        super().__init__(message)


class CommitLostError(IngestError):
    """The consumer lost its partitions (a rebalance) before committing; the batch is redelivered elsewhere."""
