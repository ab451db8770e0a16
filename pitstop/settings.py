"""One settings object for a feature repo: defaults < ``pitstop.yaml`` < ``PITSTOP_<SECTION>_<KEY>``.

Relative paths in the settings are resolved against the repo directory (the folder holding
``pitstop.yaml``), so a repo works from any current directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pitstop.errors import ConfigError

__all__ = ["CONFIG_FILE", "Settings", "load_settings"]

CONFIG_FILE = "pitstop.yaml"
ENV_PREFIX = "PITSTOP_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistrySettings(_Section):
    """Where definitions, watermarks and model versions are kept."""

    path: str = "data/registry.db"


class OfflineStoreSettings(_Section):
    """The DuckDB offline engine."""

    root: str = "."
    """Directory that relative ParquetSource paths are resolved against."""
    memory_limit: str = "50%"
    """DuckDB memory limit: an absolute size ("4GB") or a share of physical memory ("50%")."""
    temp_directory: str | None = None
    """Where DuckDB spills when a join outgrows the memory limit; default: a folder in the system temp dir."""
    threads: int | None = None
    """Worker threads; default: the number of cores."""


class OnlineStoreSettings(_Section):
    """The online store: ``sqlite:///path`` (embedded default) or ``redis://host:port/db``."""

    url: str = "sqlite:///data/online.db"


class KafkaSettings(_Section):
    """Kafka consumer settings for stream ingestion."""

    bootstrap_servers: str = "localhost:9092"
    group_id: str = "pitstop-ingester"


class ArtifactSettings(_Section):
    """Where registered model artifacts are copied."""

    path: str = "data/artifacts"


class Settings(_Section):
    """All settings of one feature repo."""

    project: str = "default"
    registry: RegistrySettings = RegistrySettings()
    offline_store: OfflineStoreSettings = OfflineStoreSettings()
    online_store: OnlineStoreSettings = OnlineStoreSettings()
    kafka: KafkaSettings = KafkaSettings()
    artifacts: ArtifactSettings = ArtifactSettings()
    repo_path: Path = Path(".")

    def resolve(self, path: str | Path) -> Path:
        """Resolve ``path`` against the repo directory unless it is absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.repo_path / p)

    @property
    def registry_path(self) -> Path:
        """Absolute path of the SQLite registry file."""
        return self.resolve(self.registry.path)

    @property
    def offline_root(self) -> Path:
        """Absolute directory that relative source paths are resolved against."""
        return self.resolve(self.offline_store.root)


_SECTIONS = [name for name, f in Settings.model_fields.items() if isinstance(f.default, BaseModel)]


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        if rest == "project":
            overrides["project"] = value
            continue
        for section in sorted(_SECTIONS, key=len, reverse=True):
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                if key not in Settings.model_fields[section].annotation.model_fields:  # type: ignore[union-attr]
                    raise ConfigError(f"environment variable {var}: section {section!r} has no setting {key!r}")
                overrides.setdefault(section, {})[key] = value
                break
    return overrides


def load_settings(repo_path: str | Path = ".", environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``pitstop.yaml`` in ``repo_path`` and apply ``PITSTOP_*`` overrides.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or holds an unknown or invalid setting.
    """
    repo = Path(repo_path).resolve()
    config_file = repo / CONFIG_FILE
    if not config_file.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {repo}: run `pitstop init` or pass -r/--repo with the feature repo")
    try:
        raw = yaml.safe_load(config_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_file}: expected a mapping of settings at the top level")
    for section, values in _env_overrides(os.environ if environ is None else environ).items():
        if isinstance(values, dict):
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                raise ConfigError(f"{config_file}: section {section!r} must be a mapping")
            raw[section].update(values)
        else:
            raw[section] = values
    try:
        return Settings(**raw, repo_path=repo)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{config_file}: {problems}") from exc
