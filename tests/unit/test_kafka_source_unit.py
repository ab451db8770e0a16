"""KafkaSource.timestamp_unit survives the registry, and repos applied before it existed plan no change."""

from __future__ import annotations

from pitstop import KafkaSource, ParquetSource
from pitstop.definitions.contents import RepoContents
from pitstop.registry.serde import from_specs, to_spec


def _specs(source: KafkaSource) -> dict:
    return {"source": {source.batch_source.name: to_spec(source.batch_source), source.name: to_spec(source)}}


def test_the_unit_round_trips_and_the_default_is_not_stored() -> None:
    batch = ParquetSource("b", path="data/b")
    seconds = KafkaSource("k", topic="t", batch_source=batch)
    millis = KafkaSource("k", topic="t", batch_source=batch, timestamp_unit="ms")
    assert "timestamp_unit" not in to_spec(seconds)  # a spec applied before the field existed is identical
    assert to_spec(millis)["timestamp_unit"] == "ms"
    assert from_specs(_specs(millis)).sources["k"].timestamp_unit == "ms"  # type: ignore[union-attr]
    old = _specs(seconds)
    old["source"]["k"].pop("timestamp_unit", None)
    restored = from_specs(old).sources["k"]
    assert isinstance(restored, KafkaSource) and restored.timestamp_unit == "s"
    assert isinstance(from_specs(old), RepoContents)
