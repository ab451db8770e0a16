"""The Feast translation on hand-written Feast files (no Feast needed: the files are read, not run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import DefinitionError
from pitstop.interop.feast_import import translate_feast_repo

FEAST_FILE = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, KafkaSource, FeatureService, PushSource
from feast.types import Float32, Int64, Array

TTL = timedelta(hours=2)
DATA = "data/stats.parquet"

driver = Entity(name="driver")          # join key defaults to the name in Feast
rider = Entity(name="rider", join_keys=["rider_id"], value_type=None)

stats = FeatureView(
    name="stats",
    entities=[driver],
    ttl=TTL,
    schema=[Field(name="rate", dtype=Float32), Field(name="hist", dtype=Array(Int64))],
    source=FileSource(path=DATA, timestamp_field="ts", file_format=None),
    owner="team@example.com",
)
clicks = KafkaSource(name="clicks", kafka_bootstrap_servers="b:9092", topic="t", timestamp_field="ts")
from_stream = FeatureView(name="from_stream", entities=[rider], schema=[Field(name="n", dtype=Int64)], source=clicks)
no_ttl = FeatureView(name="no_ttl", entities=[driver], ttl=timedelta(seconds=0),
                     schema=[Field(name="rate", dtype=Float32)], source=FileSource(path=DATA, timestamp_field="ts"))
svc = FeatureService(name="svc", features=[stats[["rate"]], no_ttl])
helper = compute_something()
'''


def _write(root: Path, files: dict[str, str]) -> Path:
    repo = root / "feast_repo"
    repo.mkdir(parents=True)
    for name, text in files.items():
        (repo / name).write_text(text)
    (repo / "feature_store.yaml").write_text("project: shop\nprovider: local\n")
    return repo


def test_translation_applies_and_lists_what_it_left_out(tmp_path: Path) -> None:
    repo = _write(tmp_path, {"defs.py": FEAST_FILE})
    (repo / "data").mkdir()
    pd.DataFrame({"driver": [1], "ts": [pd.Timestamp("2026-01-01", tz="UTC")], "rate": pd.Series([0.5], dtype="float32")}).to_parquet(
        repo / "data" / "stats.parquet")
    out = tmp_path / "ours"
    t = translate_feast_repo(repo, out)
    assert t.project == "shop"  # from feature_store.yaml
    assert t.translated == ["Entity driver", "Entity rider", "FeatureView stats", "FeatureView no_ttl",
                            "FeatureService svc"]
    skipped = {(s.where, s.what): s.why for s in t.skipped}
    assert "Array" in skipped[("defs.py:16", "a field of feature view 'stats'")]
    assert skipped[("defs.py:18", "argument owner= of feature view 'stats'")] == "only tunes Feast"
    assert "brokers" in skipped[("defs.py:20", "KafkaSource clicks")]
    assert "'clicks'" in skipped[("defs.py:21", "FeatureView from_stream")]  # depends on what was left out
    assert "join_keys=['driver']" in t.definitions and "ttl=timedelta(hours=2)" in t.definitions
    assert "FeatureView('no_ttl'" in t.definitions and "timedelta(seconds=0)" not in t.definitions
    out.mkdir()
    (out / "feast_definitions.py").write_text(t.definitions)
    (out / "pitstop.yaml").write_text("project: shop\n")
    with FeatureStore(out) as store:
        store.apply()
        assert store.definitions().service("svc").feature_refs == ["stats:rate", "no_ttl:rate"]
        assert store.definitions().views["stats"].ttl is not None and store.definitions().views["no_ttl"].ttl is None
        # the source path was rewritten relative to the new repo: the same file is read
        got = store.get_historical_features(pd.DataFrame({"driver": [1], "event_timestamp": [
            pd.Timestamp("2026-01-01 01:00", tz="UTC")]}), ["stats:rate"]).to_pandas()
        assert got["rate"].tolist() == [0.5]


def test_unparsable_feast_file_names_file_and_line(tmp_path: Path) -> None:
    repo = _write(tmp_path, {"ok.py": "x = 1\n", "broken.py": "driver = Entity(name=\n"})
    with pytest.raises(DefinitionError, match=r"broken\.py:1"):
        translate_feast_repo(repo, tmp_path / "ours")


def test_a_folder_without_python_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no Python files"):
        translate_feast_repo(tmp_path, tmp_path / "ours")
