from __future__ import annotations

from pathlib import Path

import pytest

from pitstop.errors import ConfigError
from pitstop.settings import load_settings


def test_yaml_then_environment_overrides(tmp_path: Path) -> None:
    (tmp_path / "pitstop.yaml").write_text("project: p\nonline_store:\n  url: sqlite:///x.db\n")
    s = load_settings(tmp_path, environ={"PITSTOP_ONLINE_STORE_URL": "redis://h:1/2", "PITSTOP_PROJECT": "q",
                                         "PITSTOP_OFFLINE_STORE_MEMORY_LIMIT": "2GB"})
    assert (s.project, s.online_store.url, s.offline_store.memory_limit) == ("q", "redis://h:1/2", "2GB")
    assert s.registry_path == tmp_path.resolve() / "data/registry.db"


def test_unknown_keys_are_rejected_with_their_place(tmp_path: Path) -> None:
    (tmp_path / "pitstop.yaml").write_text("registry:\n  pth: x\n")
    with pytest.raises(ConfigError, match=r"registry.pth"):
        load_settings(tmp_path, environ={})
    (tmp_path / "pitstop.yaml").write_text("project: p\n")
    with pytest.raises(ConfigError, match="PITSTOP_REGISTRY_PTH"):
        load_settings(tmp_path, environ={"PITSTOP_REGISTRY_PTH": "x"})


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pitstop init"):
        load_settings(tmp_path, environ={})


def test_the_online_key_ttl_comes_from_the_environment_and_must_be_positive(tmp_path: Path) -> None:
    (tmp_path / "pitstop.yaml").write_text("project: p\n")
    s = load_settings(tmp_path, environ={"PITSTOP_ONLINE_STORE_KEY_TTL_SECONDS": "86400"})
    assert s.online_store.key_ttl_seconds == 86400.0
    assert load_settings(tmp_path, environ={}).online_store.key_ttl_seconds is None
    with pytest.raises(ConfigError, match="key_ttl_seconds"):
        load_settings(tmp_path, environ={"PITSTOP_ONLINE_STORE_KEY_TTL_SECONDS": "-5"})
