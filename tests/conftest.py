from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_pitstop_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's PITSTOP_* variables must not change test results."""
    for var in list(os.environ):
        if var.startswith("PITSTOP_"):
            monkeypatch.delenv(var, raising=False)
