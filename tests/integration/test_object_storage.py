"""Parquet sources in object storage, against a real S3-compatible server (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from pitstop import FeatureStore
from pitstop.errors import NotFoundError, OfflineStoreError
from tests.support.online_repo import DEFS, make_repo, now_hour, stats_rows
from tests.support.repos import write_repo

pytestmark = pytest.mark.integration

FEATURES = ["stats:rate", "stats:trips", "stats:city", "forever:signup"]


def s3(server) -> fs.S3FileSystem:  # type: ignore[no-untyped-def]
    return fs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key,
                           endpoint_override=f"127.0.0.1:{server.port}", scheme="http", region="us-east-1")


def entity_rows() -> pd.DataFrame:
    now = now_hour()
    return pd.DataFrame({"driver_id": [1, 1, 2, 3, 4], "event_timestamp": [
        now, now - timedelta(minutes=40), now, now, now]})


def upload(server, local: Path, key: str) -> None:  # type: ignore[no-untyped-def]
    pq.write_table(pq.read_table(local), f"{server.bucket}/{key}", filesystem=s3(server))


def test_training_sets_from_s3_equal_the_local_ones(tmp_path: Path, s3_env) -> None:  # type: ignore[no-untyped-def]
    local = make_repo(tmp_path / "local")
    expected = local.get_historical_features(entity_rows(), FEATURES).to_pandas()
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    upload(s3_env, tmp_path / "local/data/stats.parquet", f"{prefix}/stats.parquet")
    signup = pq.read_table(tmp_path / "local/data/signup.parquet")  # a prefix of two files
    pq.write_table(signup.slice(0, 1), f"{s3_env.bucket}/{prefix}/signup/part-0.parquet", filesystem=s3(s3_env))
    pq.write_table(signup.slice(1), f"{s3_env.bucket}/{prefix}/signup/part-1.parquet", filesystem=s3(s3_env))
    defs = (DEFS.replace('path="data/stats.parquet"', f'path="s3://{s3_env.bucket}/{prefix}/stats.parquet"')
            .replace('path="data/signup.parquet"', f'path="s3://{s3_env.bucket}/{prefix}/signup/"'))
    remote_root = tmp_path / "remote"
    write_repo(remote_root, {"defs.py": defs}, {"data/speed/part-0.parquet": pd.read_parquet(
        tmp_path / "local/data/speed/part-0.parquet")})
    with FeatureStore(remote_root) as remote:
        remote.apply()
        got = remote.get_historical_features(entity_rows(), FEATURES).to_pandas()
        pd.testing.assert_frame_equal(got, expected)
        dataset = remote.get_historical_features(entity_rows(), FEATURES).dataset_id
        assert remote.get_historical_features(entity_rows(), as_of=dataset).to_pandas().equals(got)

        # a replaced object is a new version: the next read sees it, never the cached old copy
        changed = stats_rows(now_hour()).assign(rate=lambda f: f["rate"] + 100)
        pq.write_table(pa.Table.from_pandas(changed, preserve_index=False),
                       f"{s3_env.bucket}/{prefix}/stats.parquet", filesystem=s3(s3_env))
        again = remote.get_historical_features(entity_rows(), FEATURES).to_pandas()
        assert (again["rate"].dropna() > 100).all() and again["rate"].notna().sum() == expected["rate"].notna().sum()
        with pytest.raises(NotFoundError, match=r"stats\.parquet .*replaced since the dataset was recorded"):
            remote.get_historical_features(entity_rows(), as_of=dataset).to_arrow()  # no bucket versioning here
    local.close()


def test_refused_credentials_name_the_url_not_the_secret(tmp_path: Path, s3_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-123")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody" + uuid.uuid4().hex[:6])
    from pitstop.storage import list_remote_parquet

    with pytest.raises(OfflineStoreError) as info:
        list_remote_parquet(f"s3://{s3_env.bucket}/anything/")
    assert f"s3://{s3_env.bucket}/anything/" in str(info.value)
    assert "wrong-secret-value-123" not in str(info.value)


def test_a_delta_table_in_s3_reads_like_the_same_table_on_disk(tmp_path: Path, s3_env) -> None:  # type: ignore[no-untyped-def]
    from deltalake import write_deltalake

    from tests.unit.test_delta_source import DEFS as DELTA_DEFS
    from tests.unit.test_delta_source import entity, rows

    local_table = tmp_path / "local/data/trips_delta"
    local_table.parent.mkdir(parents=True)
    write_deltalake(str(local_table), rows([0, 1], 10.0))
    write_deltalake(str(local_table), rows([5], 50.0), mode="append")
    url = f"s3://{s3_env.bucket}/d-{uuid.uuid4().hex[:8]}/trips_delta"
    options = {"AWS_ENDPOINT_URL": s3_env.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": s3_env.access_key,
               "AWS_SECRET_ACCESS_KEY": s3_env.secret_key, "AWS_REGION": "us-east-1",
               "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}  # one writer in this test
    write_deltalake(url, rows([0, 1], 10.0), storage_options=options)
    write_deltalake(url, rows([5], 50.0), mode="append", storage_options=options)
    local = FeatureStore(write_repo(tmp_path / "local", {"defs.py": DELTA_DEFS}))
    remote = FeatureStore(write_repo(tmp_path / "remote", {"defs.py": DELTA_DEFS.replace('"data/trips_delta"',
                                                                                         f'"{url}"')}))
    with local, remote:
        local.apply()
        remote.apply()
        expected = local.get_historical_features(entity(), ["trips:speed"]).to_arrow()
        job = remote.get_historical_features(entity(), ["trips:speed"])
        assert job.to_arrow().equals(expected)
        sources = remote.registry.dataset(job.dataset_id).sources["trips_delta"]  # type: ignore[arg-type,union-attr]
        assert {f["table_version"] for f in sources} == {1} and all(f["ref"].startswith(url) for f in sources)


def test_pushes_commit_to_a_delta_table_in_s3(tmp_path: Path, s3_env) -> None:  # type: ignore[no-untyped-def]
    from deltalake import DeltaTable

    from tests.unit.test_delta_source import PUSH_DEFS, entity, rows

    url = f"s3://{s3_env.bucket}/p-{uuid.uuid4().hex[:8]}/speed_delta"
    with FeatureStore(write_repo(tmp_path, {"defs.py": PUSH_DEFS.replace('"data/speed_delta"', f'"{url}"')})) as store:
        store.apply()
        for hours, speed in (([0, 1], 10.0), ([5], 50.0)):
            store.push("speed_push", rows(hours, speed).to_pandas(), to="offline")
        got = store.get_historical_features(entity(), ["speeds:speed"]).to_pandas()
    assert got["speed"].tolist() == [11.0, 55.0]
    table = DeltaTable(url, storage_options={"AWS_ALLOW_HTTP": "true"})
    assert table.version() == 1 and table.to_pyarrow_table().num_rows == 3


def test_relative_paths_resolve_under_an_s3_offline_root(tmp_path: Path, s3_env) -> None:  # type: ignore[no-untyped-def]
    local = make_repo(tmp_path / "local")
    expected = local.get_historical_features(entity_rows(), FEATURES).to_pandas()
    root = f"s3://{s3_env.bucket}/root-{uuid.uuid4().hex[:8]}"
    bucket_root = root.removeprefix("s3://")
    for name in ("stats.parquet", "signup.parquet"):
        pq.write_table(pq.read_table(tmp_path / "local/data" / name), f"{bucket_root}/data/{name}", filesystem=s3(s3_env))
    remote_root = tmp_path / "remote"
    write_repo(remote_root, {"defs.py": DEFS.replace('path="data/speed"', f'path="{tmp_path}/local/data/speed"')})
    (remote_root / "pitstop.yaml").write_text((remote_root / "pitstop.yaml").read_text().replace(
        "offline_store:\n", f"offline_store:\n  root: {root}\n"))
    with FeatureStore(remote_root) as remote:
        assert remote.settings.offline_root == root
        remote.apply()
        pd.testing.assert_frame_equal(remote.get_historical_features(entity_rows(), FEATURES).to_pandas(), expected)
    local.close()
