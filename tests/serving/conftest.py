"""A feature repo with materialized values and registered models, served by the app in-process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pitstop import FeatureStore
from pitstop.serving import create_app
from pitstop.settings import ServingSettings
from tests.support.online_repo import make_repo, now_hour


class RateModel:
    """pyfunc model: 10 * rate + trips (+ rate_plus); counts its calls to prove one call per batch."""

    calls = 0

    def predict(self, frame: pd.DataFrame) -> list[float]:
        type(self).calls += 1
        return (frame["rate"] * 10 + frame["trips"] + frame["rate_plus"]).tolist()


class OffsetModel(RateModel):
    """Version 2 in swap tests: the same plus 1000, so answers tell versions apart."""

    def predict(self, frame: pd.DataFrame) -> list[float]:
        return [v + 1000 for v in super().predict(frame)]


def build_served_repo(root: Path, online_url: str | None = None) -> FeatureStore:
    store = make_repo(root, online_url)
    now = now_hour()
    store.materialize(now - timedelta(days=500), now + timedelta(hours=1))
    store.models.register("rate", RateModel(), "pyfunc", feature_service="svc", alias="production",
                          metrics={"mae": 0.5})
    store.models.register("rate_default", RateModel(), "pyfunc", feature_service="svc", alias="production",
                          serving={"defaults": {"rate": 0.0, "trips": -1}})
    return store


@pytest.fixture
def served_store(tmp_path: Path) -> Iterator[FeatureStore]:
    store = build_served_repo(tmp_path)
    serving = ServingSettings(max_entities=5, model_refresh_seconds=0.05)
    with FeatureStore(tmp_path, settings=store.settings.model_copy(update={"serving": serving})) as served:
        yield served
    store.close()


@pytest.fixture
def client(served_store: FeatureStore) -> Iterator[TestClient]:
    with TestClient(create_app(store=served_store)) as c:
        assert c.app.state.service.cache.ready.wait(10)
        yield c
