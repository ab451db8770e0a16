"""The model registry: numbered immutable versions, moving aliases, integrity checks, flavors, CLI."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from pitstop import FeatureStore
from pitstop.errors import ArtifactIntegrityError, ModelRegistryError, NotRegisteredError
from pitstop.model_registry import training_fingerprint
from tests.support.online_repo import make_repo


class Doubler:
    """A pyfunc model: any object with ``predict``."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(data, dtype=float).sum(axis=1) * self.factor


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    with make_repo(tmp_path / "repo") as s:
        yield s


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rate = rng.random(20)
    return pd.DataFrame({"rate": rate, "trips": rng.integers(0, 100, 20).astype(float), "rate_plus": rate + 1})


def fitted(frame: pd.DataFrame) -> LinearRegression:
    return LinearRegression().fit(frame, 3 * frame["rate"] - 0.5 * frame["trips"] + frame["rate_plus"])


def test_versions_are_numbered_and_immutable(store: FeatureStore, frame: pd.DataFrame) -> None:
    versions = [store.models.register("eta", Doubler(k), "pyfunc", "svc", {"rmse": k}) for k in (1.0, 2.0, 3.0)]
    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.version for v in store.models.list("eta")] == [1, 2, 3]
    assert store.models.get("eta").version == 3  # latest
    first = store.models.resolve("eta:1")
    assert first.metrics == {"rmse": 1.0} and first.signature == ["stats:rate", "stats:trips", "rate_plus:rate_plus"]
    assert first.artifact_path == "eta/1/model.pkl"
    assert (store.settings.resolve(store.settings.artifacts.path) / "eta" / "1" / "model.pkl").is_file()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError on frozen models
        first.version = 9  # type: ignore[misc]
    assert not hasattr(store.registry, "update_model_version")
    assert store.models.load("eta:1").predict(frame).tolist() == (frame.sum(axis=1) * 1.0).tolist()
    assert store.models.load("eta:3").predict(frame).tolist() == (frame.sum(axis=1) * 3.0).tolist()


def test_aliases_move(store: FeatureStore) -> None:
    for _ in range(2):
        store.models.register("eta", Doubler(), "pyfunc", "svc")
    store.models.set_alias("eta", "production", 1)
    assert store.models.resolve("eta@production").version == 1
    assert store.models.get("eta", 1).aliases == ["production"]
    store.models.set_alias("eta", "production", 2)
    assert store.models.resolve("eta@production").version == 2
    assert [v.aliases for v in store.models.list("eta")] == [[], ["production"]]
    with pytest.raises(NotRegisteredError, match="no version 7"):
        store.models.set_alias("eta", "production", 7)
    with pytest.raises(NotRegisteredError, match="no alias 'staging'"):
        store.models.resolve("eta@staging")


def test_tampered_artifact_is_detected_on_load(store: FeatureStore) -> None:
    mv = store.models.register("eta", Doubler(), "pyfunc", "svc")
    path = store.models.artifacts.path(mv.artifact_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="modified after registration"):
        store.models.load("eta:1")
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        store.models.load("eta:1")


def test_sklearn_round_trip_predicts_the_same(store: FeatureStore, frame: pd.DataFrame, tmp_path: Path) -> None:
    model = fitted(frame)
    mv = store.models.register("lin", model, "sklearn", "svc", training_set=frame)
    loaded = store.models.load(mv)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    # a DataFrame with extra columns in another order is reduced to the signature's columns
    shuffled = frame.assign(driver_id=1)[["driver_id", "rate_plus", "trips", "rate"]]
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(frame))
    # registering from a pickle file on disk works the same
    file = tmp_path / "lin.pkl"
    file.write_bytes(pickle.dumps(model))
    from_file = store.models.register("lin", file, "sklearn", "svc")
    assert from_file.version == 2 and from_file.artifact_path == "lin/2/lin.pkl"
    np.testing.assert_array_equal(store.models.load("lin:2").predict(frame), model.predict(frame))


def test_pyfunc_class_and_numpy_input(store: FeatureStore, frame: pd.DataFrame) -> None:
    store.models.register("dbl", Doubler, "pyfunc", "svc")  # a class: instantiated on load
    loaded = store.models.load("dbl")
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), frame.sum(axis=1).to_numpy() * 2.0)


def test_training_fingerprint_covers_entity_rows_not_features(store: FeatureStore, frame: pd.DataFrame) -> None:
    rows = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)})
    with_features = rows.assign(rate=[0.1, 0.2], trips=[1, 2])
    other_values = rows.assign(rate=[0.9, 0.8], trips=[5, 6])
    columns = ["rate", "trips"]
    assert training_fingerprint(with_features, 1, columns) == training_fingerprint(other_values, 1, columns)
    assert training_fingerprint(with_features, 1, columns) != training_fingerprint(with_features, 2, columns)
    assert training_fingerprint(rows.iloc[:1], 1, columns) != training_fingerprint(rows, 1, columns)
    mv = store.models.register("eta", Doubler(), "pyfunc", "svc", training_set=with_features)
    assert mv.training_fingerprint == training_fingerprint(other_values, store.registry.version(), columns)


def test_invalid_registrations_are_rejected(store: FeatureStore) -> None:
    with pytest.raises(NotRegisteredError, match="feature service 'nope' is not registered"):
        store.models.register("eta", Doubler(), "pyfunc", "nope")
    with pytest.raises(ModelRegistryError, match="unknown model flavor 'torch'"):
        store.models.register("eta", Doubler(), "torch", "svc")
    with pytest.raises(ModelRegistryError, match="no predict method"):
        store.models.register("eta", object(), "pyfunc", "svc")
    with pytest.raises(ModelRegistryError, match="invalid model name"):
        store.models.register("eta@prod", Doubler(), "pyfunc", "svc")
    with pytest.raises(ModelRegistryError, match="must be a number"):
        store.models.register("eta", Doubler(), "pyfunc", "svc", {"auc": "high"})  # type: ignore[dict-item]
    assert store.models.list() == []
    with pytest.raises(NotRegisteredError, match="no model named 'eta'"):
        store.models.get("eta")
    leftovers = store.settings.resolve(store.settings.artifacts.path)
    assert not leftovers.exists() or not any(p.is_file() for p in leftovers.rglob("*"))


def pitstop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pitstop.cli", *args], capture_output=True, text=True)


def test_cli_register_list_promote_describe(tmp_path: Path, frame: pd.DataFrame) -> None:
    repo = tmp_path / "repo"
    make_repo(repo).close()
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(pickle.dumps(fitted(frame)))
    r = str(repo)

    first = pitstop("-r", r, "--json", "models", "register", "eta", str(artifact), "--flavor", "sklearn",
                    "--service", "svc", "--metric", "rmse=0.5", "--alias", "staging")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["version"] == 1 and json.loads(first.stdout)["aliases"] == ["staging"]
    second = pitstop("-r", r, "models", "register", "eta", str(artifact), "--flavor", "sklearn", "--service", "svc")
    assert second.returncode == 0 and "version 2" in second.stdout, second.stderr

    listed = json.loads(pitstop("-r", r, "--json", "models", "list", "eta").stdout)
    assert [(v["version"], v["metrics"]) for v in listed] == [(1, {"rmse": 0.5}), (2, {})]
    table = pitstop("-r", r, "models", "list")
    assert table.returncode == 0 and "eta" in table.stdout and "staging" in table.stdout

    promoted = pitstop("-r", r, "models", "promote", "eta", "2", "--alias", "production")
    assert promoted.returncode == 0, promoted.stderr
    described = json.loads(pitstop("-r", r, "--json", "models", "describe", "eta@production").stdout)
    assert described["version"] == 2 and described["signature"] == ["stats:rate", "stats:trips", "rate_plus:rate_plus"]
    assert json.loads(pitstop("-r", r, "--json", "models", "describe", "eta:1").stdout)["aliases"] == ["staging"]
    human = pitstop("-r", r, "models", "describe", "eta")
    assert human.returncode == 0 and "sha256" in human.stdout

    bad = pitstop("-r", r, "models", "register", "eta", str(artifact), "--flavor", "sklearn", "--service", "nope")
    assert bad.returncode == 1 and "feature service 'nope' is not registered" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = pitstop("-r", r, "models", "describe", "eta@canary")
    assert missing.returncode == 1 and "no alias 'canary'" in missing.stderr
    with FeatureStore(repo) as store:
        np.testing.assert_array_equal(store.models.load("eta@production").predict(frame), fitted(frame).predict(frame))


def test_lightgbm_round_trip(store: FeatureStore, frame: pd.DataFrame) -> None:
    import lightgbm as lgb

    target = 3 * frame["rate"] - 0.5 * frame["trips"]
    model = lgb.LGBMRegressor(n_estimators=5, min_child_samples=2, verbose=-1).fit(frame, target)
    store.models.register("gbm", model, "lightgbm", "svc")
    loaded = store.models.load("gbm")
    assert loaded.predict(frame).shape == (len(frame),)
    np.testing.assert_allclose(loaded.predict(frame), model.predict(frame))


def test_xgboost_round_trip(store: FeatureStore, frame: pd.DataFrame) -> None:
    import xgboost as xgb

    target = 3 * frame["rate"] - 0.5 * frame["trips"]
    model = xgb.XGBRegressor(n_estimators=5, max_depth=2).fit(frame, target)
    mv = store.models.register("xgb", model, "xgboost", "svc")
    assert mv.artifact_path == "xgb/1/model.json"
    np.testing.assert_allclose(store.models.load("xgb").predict(frame), model.predict(frame), rtol=1e-6)


def test_onnx_round_trip(store: FeatureStore, frame: pd.DataFrame) -> None:
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.0], [2.0], [-1.0]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    store.models.register("onx", model, "onnx", "svc")
    predicted = store.models.load("onx").predict(frame)
    np.testing.assert_allclose(predicted[:, 0], frame.to_numpy(np.float32) @ weights[:, 0], rtol=1e-5)


def test_missing_flavor_library_names_the_extra(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # makes `import lightgbm` raise ImportError
    with pytest.raises(ModelRegistryError, match=r"pip install 'pitstop\[lightgbm\]'"):
        store.models.register("gbm", object(), "lightgbm", "svc")
