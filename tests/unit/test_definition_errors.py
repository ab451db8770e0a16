"""Each bad definition fails with a message naming the file and line and what to fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import DefinitionError, RepoLoadError
from tests.support.repos import ts, write_repo

DATA = {"data/d.parquet": pd.DataFrame({"driver_id": [1], "event_timestamp": [ts("2026-01-01")], "rate": [0.5]})}

HEAD = """from pitstop import Entity, FeatureView, Field, Float64, Int64, String, ParquetSource
driver = Entity("driver", join_keys=["driver_id"])
src = ParquetSource("src", path="data/d.parquet")
"""


def load_error(tmp_path: Path, files: dict[str, str]) -> DefinitionError:
    write_repo(tmp_path, files, DATA)
    with pytest.raises(DefinitionError) as info:
        FeatureStore(tmp_path).plan()
    return info.value


def test_duplicate_names_name_both_places(tmp_path: Path) -> None:
    err = load_error(tmp_path, {
        "a.py": HEAD + 'v = FeatureView("v", entities=[driver], schema=[Field("rate", Float64)], source=src)\n',
        "b.py": "from a import driver, src\nfrom pitstop import FeatureView, Field, Float64\n\n"
        'w = FeatureView("v", entities=[driver], schema=[Field("rate", Float64)], source=src)\n',
    })
    assert isinstance(err, RepoLoadError)
    msg = str(err)
    assert f"{tmp_path / 'a.py'}:4" in msg and f"{tmp_path / 'b.py'}:4" in msg and "'v'" in msg


def test_unknown_entity_names_the_view_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, {"a.py": HEAD + "\n"
                                'v = FeatureView("v", entities=["rider"], schema=[Field("rate", Float64)], source=src)\n'})
    assert str(err).startswith(f"{tmp_path / 'a.py'}:5")
    assert "unknown entity 'rider'" in str(err) and "driver" in str(err)


def test_feature_absent_from_parquet(tmp_path: Path) -> None:
    err = load_error(tmp_path, {"a.py": HEAD + 'v = FeatureView("v", entities=[driver], schema=[Field("speed", Float64)], source=src)\n'})
    assert str(err).startswith(f"{tmp_path / 'a.py'}:4")
    assert "feature 'speed' is not a column" in str(err) and "rate" in str(err)


def test_dtype_that_does_not_match_parquet(tmp_path: Path) -> None:
    err = load_error(tmp_path, {"a.py": HEAD + 'v = FeatureView("v", entities=[driver], schema=[Field("rate", String)], source=src)\n'})
    assert str(err).startswith(f"{tmp_path / 'a.py'}:4")
    assert "declared String" in str(err) and "double" in str(err)


def test_missing_timestamp_column(tmp_path: Path) -> None:
    head = HEAD.replace('path="data/d.parquet")', 'path="data/d.parquet", timestamp_field="ts")')
    err = load_error(tmp_path, {"a.py": head + 'v = FeatureView("v", entities=[driver], schema=[Field("rate", Float64)], source=src)\n'})
    assert str(err).startswith(f"{tmp_path / 'a.py'}:4")
    assert "timestamp_field 'ts' is not a column" in str(err)


def test_join_key_missing_from_source(tmp_path: Path) -> None:
    head = HEAD.replace('join_keys=["driver_id"]', 'join_keys=["driver_uuid"]')
    err = load_error(tmp_path, {"a.py": head + 'v = FeatureView("v", entities=[driver], schema=[Field("rate", Float64)], source=src)\n'})
    assert str(err).startswith(f"{tmp_path / 'a.py'}:4")
    assert "join key 'driver_uuid' is not a column" in str(err)


def test_invalid_arguments_name_the_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, {"a.py": HEAD + 'v = FeatureView("v", entities=[driver], schema=[Field("rate", Float64)], source=src, ttl="soon")\n'})
    assert str(err).startswith(f"{tmp_path / 'a.py'}:4") and "ttl" in str(err)


def test_exception_in_a_definition_file_names_its_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, {"a.py": HEAD + "x = 1 / 0\n"})
    assert isinstance(err, RepoLoadError)
    assert str(err).startswith(f"{tmp_path / 'a.py'}:4") and "ZeroDivisionError" in str(err)


def test_ignored_files_are_not_run(tmp_path: Path) -> None:
    write_repo(tmp_path, {"a.py": HEAD + 'v = FeatureView("v", entities=[driver], schema=[Field("rate", Float64)], source=src)\n',
                          "script.py": "raise SystemExit('must not run')\n"}, DATA)
    (tmp_path / ".pitstopignore").write_text("script.py\n")
    assert FeatureStore(tmp_path).plan().counts()["add"] == 3


@pytest.mark.parametrize("stop", ["import sys\nsys.exit(0)\n", "raise SystemExit(3)\n", "raise KeyboardInterrupt\n"])
def test_exiting_definition_file_is_a_load_error_naming_the_line(tmp_path: Path, stop: str) -> None:
    err = load_error(tmp_path, {"a.py": HEAD + stop})
    assert isinstance(err, RepoLoadError)
    line = HEAD.count("\n") + stop.count("\n")
    assert str(err).startswith(f"{tmp_path / 'a.py'}:{line}")
    assert "must not exit" in str(err)


def test_cli_apply_with_an_exiting_definition_file_fails(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_repo(tmp_path, {"a.py": HEAD + "import sys\nsys.exit(0)\n"}, DATA)
    done = subprocess.run([sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path), "apply"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "a.py:5" in done.stdout + done.stderr
