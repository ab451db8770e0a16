"""The artifact that is loaded is the artifact whose sha256 was checked (no check-then-reopen race)."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.artifacts import ArtifactStore
from pitstop.errors import ArtifactIntegrityError
from tests.support.online_repo import make_repo

EXECUTED: list[str] = []


def _malicious() -> object:
    """What a swapped-in pickle runs when it is unpickled."""
    EXECUTED.append("ran")
    return object()


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_malicious, ())


class Halver:
    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(data, dtype=float).sum(axis=1) / 2


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    with make_repo(tmp_path / "repo") as s:
        yield s


def _artifact(store: FeatureStore) -> Path:
    mv = store.models.get("m", 1)
    return store.settings.resolve(store.settings.artifacts.path) / mv.artifact_path


def test_file_swapped_right_after_the_check_is_never_executed(store: FeatureStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store.models.register("m", Halver(), "pyfunc", "svc")
    path = _artifact(store)
    original = ArtifactStore.read_verified

    def check_then_swap(self: ArtifactStore, relative: str, sha256: str) -> object:
        content = original(self, relative, sha256)
        path.write_bytes(pickle.dumps(_Payload()))  # the attacker wins the race every time
        return content

    monkeypatch.setattr(ArtifactStore, "read_verified", check_then_swap)
    EXECUTED.clear()
    model = store.models.load("m:1")
    assert EXECUTED == []
    assert type(model.raw).__name__ == "Halver"
    monkeypatch.undo()
    with pytest.raises(ArtifactIntegrityError, match="modified after registration"):
        store.models.load("m:1")  # the swapped file itself is refused
    assert EXECUTED == []


@pytest.mark.slow
def test_concurrent_swaps_never_run_the_unverified_file(store: FeatureStore) -> None:
    store.models.register("m", Halver(), "pyfunc", "svc")
    path = _artifact(store)
    good, bad = path.read_bytes(), pickle.dumps(_Payload())
    stop = threading.Event()

    def swapper() -> None:
        tmp = path.with_name(".swap")
        flip = False
        while not stop.is_set():
            tmp.write_bytes(bad if flip else good)
            os.replace(tmp, path)
            flip = not flip

    EXECUTED.clear()
    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    loaded = refused = 0
    try:
        for _ in range(1500):
            try:
                store.models.load("m:1")
                loaded += 1
            except ArtifactIntegrityError:
                refused += 1
    finally:
        stop.set()
        thread.join()
    assert EXECUTED == []
    assert loaded > 0 and refused > 0  # the race really happened both ways
