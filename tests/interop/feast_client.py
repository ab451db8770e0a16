"""Feast's own client against pitstop, run with the Feast virtualenv's python (not the project's).

    FEAST_OIDC_TOKEN=KEY feast-venv/bin/python tests/interop/feast_client.py WORK_DIR URL

Writes a Feast repo whose online store is Feast's ``remote`` store pointed at ``URL`` (pitstop),
with the definitions of tests/support/online_repo.py's ``stats`` view mirrored in Feast's terms, applies
it to a local registry, and reads online features through ``FeatureStore.get_online_features``
(``RemoteOnlineStore`` posts to ``URL/get-online-features`` with the bearer token from
``FEAST_OIDC_TOKEN``). Prints the result's ``to_dict()`` as one JSON line.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path


def main(work: Path, url: str) -> None:
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64, String

    work.mkdir(parents=True, exist_ok=True)
    # the offline side is never used: a one-row file keeps FileSource happy
    pd.DataFrame({"driver_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")], "rate": [0.0],
                  "trips": [0], "city": ["x"]}).to_parquet(work / "stats.parquet")
    (work / "feature_store.yaml").write_text(
        "project: pitstop_client\nprovider: local\n"
        f"registry: {work / 'registry.db'}\n"
        f"online_store:\n  type: remote\n  path: {url}\n"
        "auth:\n  type: oidc\n"
        "entity_key_serialization_version: 3\n")
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(hours=2),
                        schema=[Field(name="driver_id", dtype=Int64), Field(name="rate", dtype=Float64),
                                Field(name="trips", dtype=Int64), Field(name="city", dtype=String)],
                        source=FileSource(path=str(work / "stats.parquet"), timestamp_field="event_timestamp"))
    store = FeatureStore(repo_path=str(work))
    store.apply([driver, stats])
    got = store.get_online_features(features=["stats:rate", "stats:trips", "stats:city"],
                                    entity_rows=[{"driver_id": 1}, {"driver_id": 99}]).to_dict()
    print(json.dumps(got, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
