"""Model artifacts in object storage, against a real S3-compatible server (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from pyarrow import fs
from sklearn.linear_model import LinearRegression

from pitstop import FeatureStore
from pitstop.artifacts.s3 import S3ArtifactStore
from pitstop.errors import ArtifactIntegrityError, ConfigError, ModelRegistryError
from pitstop.settings import ArtifactSettings, StorageSettings
from pitstop.storage.remote import set_cache_dir
from pitstop.storage.s3_put import credentials_from_env, put_if_absent
from tests.support.online_repo import make_repo

pytestmark = pytest.mark.integration

X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 3.0]])


def s3(server) -> fs.S3FileSystem:  # type: ignore[no-untyped-def]
    return fs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key,
                           endpoint_override=f"127.0.0.1:{server.port}", scheme="http", region="us-east-1")


def host(repo: FeatureStore, cache: Path, url: str) -> FeatureStore:
    """Another process on another host: the same registry and bucket, its own (empty) cache."""
    return FeatureStore(settings=repo.settings.model_copy(update={
        "artifacts": ArtifactSettings(path=url), "storage": StorageSettings(cache_dir=str(cache))}))


@pytest.fixture
def bucket_url(s3_env) -> Iterator[str]:  # type: ignore[no-untyped-def]
    yield f"s3://{s3_env.bucket}/artifacts-{uuid.uuid4().hex[:8]}"
    set_cache_dir(None)  # the cache folder is per process: do not leave it pointing into a test's tmp_path


@pytest.fixture
def repo(tmp_path: Path, bucket_url: str) -> Iterator[FeatureStore]:
    base = make_repo(tmp_path / "repo")
    yield base
    base.close()


def test_register_load_and_load_on_a_host_with_an_empty_cache(repo: FeatureStore, bucket_url: str, s3_env,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    model = LinearRegression().fit(X, X @ [2.0, -1.0] + 3)
    with host(repo, tmp_path / "cache-a", bucket_url) as a:
        mv = a.models.register("lin", model, "sklearn", alias="production")
        key = f"{bucket_url.removeprefix('s3://')}/lin/1/model.pkl"
        assert s3(s3_env).get_file_info(key).type == fs.FileType.File  # stored in the bucket, not on disk
        assert not (tmp_path / "repo/data/artifacts").exists()
        np.testing.assert_allclose(a.models.load("lin@production").predict(X), model.predict(X))
        assert (tmp_path / "cache-a/artifacts" / mv.sha256 / "model.pkl").is_file()

    empty = tmp_path / "cache-b"
    with host(repo, empty, bucket_url) as b:  # a serving host that never saw the model
        loaded = b.models.load("lin:1")
        np.testing.assert_allclose(loaded.predict(X), model.predict(X))
        assert (empty / "artifacts" / mv.sha256 / "model.pkl").is_file()
        s3(s3_env).delete_file(key)  # later loads on this host read the (re-verified) cache
        np.testing.assert_allclose(b.models.load("lin:1").predict(X), model.predict(X))


def test_directory_artifacts_round_trip(repo: FeatureStore, bucket_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    (folder / "extra").mkdir(parents=True)
    model = LinearRegression().fit(X, X[:, 0])
    (folder / "model.pkl").write_bytes(cloudpickle.dumps(model))
    (folder / "extra" / "notes.txt").write_text("trained on X")
    (folder / "extra-b.txt").write_text("before extra/notes.txt as a string, after it as a path (sha256_of's order)")
    with host(repo, tmp_path / "cache-a", bucket_url) as a:
        mv = a.models.register("bundle", folder, "sklearn")
        np.testing.assert_allclose(a.models.load(mv).predict(X), model.predict(X))
    with host(repo, tmp_path / "cache-b", bucket_url) as b:
        np.testing.assert_allclose(b.models.load("bundle:1").predict(X), model.predict(X))
        assert (tmp_path / "cache-b/artifacts" / mv.sha256 / "bundle/extra/notes.txt").read_text() == "trained on X"


def test_existing_keys_are_never_overwritten(bucket_url: str, s3_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket, _, prefix = bucket_url.removeprefix("s3://").partition("/")
    credentials = credentials_from_env()
    assert put_if_absent(bucket, f"{prefix}/raw.bin", b"first", credentials)
    assert not put_if_absent(bucket, f"{prefix}/raw.bin", b"second", credentials)

    store = S3ArtifactStore(bucket_url)
    source = tmp_path / "model.bin"
    source.write_bytes(b"version one")
    store.publish(store.stage("m", source)[0], "m", 1)
    source.write_bytes(b"someone else's version one")
    staging, _ = store.stage("m", source)
    with pytest.raises(ModelRegistryError) as info:
        store.publish(staging, "m", 1)
    assert f"{bucket_url}/m/1/model.bin" in str(info.value) and "never overwritten" in str(info.value)
    assert not staging.exists()
    with s3(s3_env).open_input_stream(f"{bucket}/{prefix}/m/1/model.bin") as stream:
        assert stream.read() == b"version one"
    assert s3(s3_env).open_input_stream(f"{bucket}/{prefix}/raw.bin").read() == b"first"


def test_a_tampered_object_is_refused(repo: FeatureStore, bucket_url: str, s3_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    with host(repo, cache, bucket_url) as a:
        mv = a.models.register("lin", LinearRegression().fit(X, X[:, 1]), "sklearn")
        a.models.load(mv)
        key = f"{bucket_url.removeprefix('s3://')}/lin/1/model.pkl"
        with s3(s3_env).open_output_stream(key) as out:  # bypasses the create-only PUT
            out.write(cloudpickle.dumps(LinearRegression().fit(X, X[:, 0])))
        shutil.rmtree(cache)
        with pytest.raises(ArtifactIntegrityError, match="modified after registration"):
            a.models.load(mv)
        assert not (cache / "artifacts" / mv.sha256 / "model.pkl").exists()  # bad bytes are never cached


def test_a_damaged_cached_copy_is_downloaded_again(repo: FeatureStore, bucket_url: str, tmp_path: Path) -> None:
    model = LinearRegression().fit(X, X[:, 1])
    with host(repo, tmp_path / "cache", bucket_url) as a:
        mv = a.models.register("lin", model, "sklearn")
        a.models.load(mv)
        cached = tmp_path / "cache/artifacts" / mv.sha256 / "model.pkl"
        cached.write_bytes(b"not a pickle")
        np.testing.assert_allclose(a.models.load(mv).predict(X), model.predict(X))
        assert cached.read_bytes() != b"not a pickle"


def test_registering_needs_keys_and_never_shows_the_secret(repo: FeatureStore, bucket_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with host(repo, tmp_path / "cache", bucket_url) as a:
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY"):
            a.models.register("lin", LinearRegression().fit(X, X[:, 1]), "sklearn")
        assert a.models.list("lin") == []  # refused before a version number was taken

        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-456")
        with pytest.raises(ModelRegistryError) as info:
            a.models.register("lin", LinearRegression().fit(X, X[:, 1]), "sklearn")
        assert "HTTP 403" in str(info.value) and f"{bucket_url}/lin/1" in str(info.value)
        assert "wrong-secret-value-456" not in str(info.value)
