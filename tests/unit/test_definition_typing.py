"""Definition files type-check as users write them: positional or keyword names, typed keywords."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "pitstop" / "templates" / "feature_repo"


def mypy(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    # MYPYPATH: mypy does not follow the editable install's import hook; point it at the package source
    env = {**os.environ, "MYPYPATH": str(TEMPLATE.parents[2])}
    return subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-incremental", *files],
                          cwd=folder, capture_output=True, text=True, timeout=300, env=env)


def test_the_example_definitions_type_check() -> None:
    result = mypy(TEMPLATE, "entities.py", "sources.py", "views.py", "services.py")
    assert result.returncode == 0, result.stdout
    assert "Success" in result.stdout


def test_a_misspelled_keyword_is_a_type_error(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text(
        "from pitstop import Entity, ParquetSource\n"
        "ok = Entity(name='driver', join_keys=['driver_id'])\n"
        "also_ok = ParquetSource('trips', path='data/trips.parquet')\n"
        "bad = Entity('customer', join_key=['customer_id'])\n")
    result = mypy(tmp_path, "defs.py")
    assert result.returncode == 1
    assert 'defs.py:4: error: Unexpected keyword argument "join_key" for "Entity"' in result.stdout, result.stdout
    assert "defs.py:2" not in result.stdout and "defs.py:3" not in result.stdout
