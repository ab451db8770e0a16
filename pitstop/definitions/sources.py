"""Data sources: where a view's rows live. Definitions only describe; engines read."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field as PydanticField
from pydantic import field_validator

from pitstop.definitions.base import Definition, check_name
from pitstop.definitions.field import Field


class _Source(Definition):
    kind: ClassVar[str] = "source"
    description: str = ""
    tags: dict[str, str] = PydanticField(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "source")

    @property
    def batch(self) -> ParquetSource:
        """The Parquet data behind this source (itself, or its batch_source)."""
        raise NotImplementedError


class ParquetSource(_Source):
    """Parquet files with one row per (entity, event time).

    Args:
        name: unique source name; also the table name SQL entity queries can use.
        path: a file, a directory of files, or a glob; relative to ``offline_store.root``.
        timestamp_field: the event-time column.
        created_timestamp_column: optional column saying when a row was written; used to break
            ties and to ignore corrections written after an entity row's timestamp.
    """

    if TYPE_CHECKING:  # the signature type checkers see (pydantic validates at run time)
        def __init__(self, name: str, *, path: str, timestamp_field: str = ..., created_timestamp_column: str | None = ...,
                     description: str = ..., tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    path: str
    timestamp_field: str = "event_timestamp"
    created_timestamp_column: str | None = None

    @property
    def batch(self) -> ParquetSource:
        return self


class DeltaSource(ParquetSource):
    """A Delta Lake table of yours (a folder, or ``s3://...``, holding ``_delta_log``).

    pitstop reads the data files of one table version (the latest, or the one a recorded dataset
    read), so nothing else needs Delta support. Tables whose readers need deletion vectors or column
    mapping are refused with a message: their data files alone do not hold the table's rows.

    Args:
        name: unique source name.
        path: the table's root; relative to ``offline_store.root``.
        timestamp_field: the event-time column.
        created_timestamp_column: optional column saying when a row was written.
    """

    if TYPE_CHECKING:  # the signature type checkers see (pydantic validates at run time)
        def __init__(self, name: str, *, path: str, timestamp_field: str = ..., created_timestamp_column: str | None = ...,
                     description: str = ..., tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...


TimeUnit = Literal["s", "ms", "us", "ns"]
"""The unit of numeric timestamps (epoch seconds, milliseconds, microseconds or nanoseconds)."""


class KafkaSource(_Source):
    """A Kafka topic of events, with a Parquet copy for training sets.

    Args:
        topic: the topic to consume.
        timestamp_field: the messages' event-time field.
        batch_source: where ingested rows are appended: a ``DeltaSource`` (one atomic commit per
            roll, safe for several ingesters and hosts) or a ``ParquetSource`` folder (one file per
            event date per roll, on one host).
        message_format: ``json`` (one object per message).
        timestamp_unit: the unit of numeric times in messages (``s``, ``ms``, ``us`` or ``ns``);
            ISO-8601 text needs none. A number that does not give a time between 1900 and 2262 in
            this unit is dead-lettered, never guessed.
    """

    if TYPE_CHECKING:
        def __init__(self, name: str, *, topic: str, batch_source: ParquetSource, timestamp_field: str = ...,
                     message_format: Literal["json"] = ..., timestamp_unit: TimeUnit = ..., description: str = ...,
                     tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    topic: str
    timestamp_field: str = "event_timestamp"
    batch_source: ParquetSource
    message_format: Literal["json"] = "json"
    timestamp_unit: TimeUnit = "s"

    @property
    def batch(self) -> ParquetSource:
        return self.batch_source


class PushSource(_Source):
    """Rows pushed by applications through ``FeatureStore.push`` or ``POST /push/{source}``."""

    if TYPE_CHECKING:
        def __init__(self, name: str, *, batch_source: ParquetSource, description: str = ...,
                     tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    batch_source: ParquetSource

    @property
    def batch(self) -> ParquetSource:
        return self.batch_source


class RequestSource(_Source):
    """Values that arrive with a request (or as entity-row columns in training) for on-demand features."""

    if TYPE_CHECKING:
        def __init__(self, name: str, *, schema: list[Field], description: str = ..., tags: dict[str, str] = ...,
                     _location: str | None = ...) -> None: ...

    schema_: list[Field] = PydanticField(alias="schema")

    @property
    def batch(self) -> ParquetSource:
        raise self.error("a request source has no batch data")


DataSource = ParquetSource | KafkaSource | PushSource
