"""Feast's side of the import test, run with the Feast virtualenv's python (not the project's).

    feast-venv/bin/python tests/interop/feast_training_set.py init FOLDER          # feast init FOLDER/demo
    feast-venv/bin/python tests/interop/feast_training_set.py historical REPO ENTITY_ROWS OUT SERVICE

``historical`` applies the repo (feast apply) and writes Feast's training set for feature service
SERVICE on the entity rows in ENTITY_ROWS (Parquet) to OUT (Parquet), with Feast's defaults.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def init(folder: Path) -> None:
    feast = Path(sys.executable).with_name("feast")
    subprocess.run([str(feast), "init", "demo"], cwd=folder, check=True, capture_output=True)
    print(folder / "demo" / "feature_repo")


def historical(repo: Path, entity_rows: Path, out: Path, service: str) -> None:
    import pandas as pd
    from feast import FeatureStore

    feast = Path(sys.executable).with_name("feast")
    subprocess.run([str(feast), "apply"], cwd=repo, check=True, capture_output=True)
    store = FeatureStore(repo_path=str(repo))
    entities = pd.read_parquet(entity_rows)
    table = store.get_historical_features(entity_df=entities, features=store.get_feature_service(service)).to_df()
    table.to_parquet(out)
    print(len(table))


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(Path(sys.argv[2]))
    else:
        historical(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
