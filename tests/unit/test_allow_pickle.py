"""registry.allow_pickle=false: no registry bytes are unpickled; pickle-free models and plain features still work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import ModelRegistryError, PitstopError
from pitstop.settings import RegistrySettings
from tests.support.online_repo import make_repo, now_hour


class Tripler:
    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(data, dtype=float).sum(axis=1) * 3


def test_without_pickles_the_registry_is_never_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_repo(tmp_path) as writer:
        now = now_hour()
        writer.materialize(now - timedelta(days=500), now + timedelta(hours=1))
        writer.models.register("m", Tripler(), "pyfunc", "svc", alias="production")
        settings = writer.settings.model_copy(update={"registry": RegistrySettings(allow_pickle=False)})

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("a registry pickle was loaded")

    monkeypatch.setattr(cloudpickle, "loads", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    with FeatureStore(tmp_path, settings=settings) as reader:
        plain = reader.get_online_features(features=["stats:rate"], entity_rows=[{"driver_id": 1}]).to_dict()
        assert plain["rate"] == [0.2]
        with pytest.raises(PitstopError, match="allow_pickle"):
            reader.get_online_features(features=["rate_plus:rate_plus"],
                                       entity_rows=[{"driver_id": 1, "bonus": 1.0}]).to_dict()
        with pytest.raises(ModelRegistryError, match="allow_pickle"):
            reader.models.load("m@production")
        assert reader.plan().is_empty  # plan compares source text: no unpickling needed
