"""Loaded models per worker, and the hot swap: when an alias moves, load the new version, then swap.

A request takes the ``ServedModel`` it was routed to once, at its start, so requests in flight
finish on the version they began with; new requests see the new version as soon as it is loaded.
Loading happens on a background thread, never on the request path (except a model's first use).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pitstop.artifacts.flavors import LoadedModel
from pitstop.errors import PitstopError
from pitstop.log import get_logger
from pitstop.model_registry import ModelRegistry, ModelVersion

log = get_logger(__name__)

DEFAULT_ALIAS = "production"
_MAX_PINNED = 16
_RETRY_SECONDS = 15.0  # how often an alias that could not be loaded is tried again (when its version did not move)


@dataclass(frozen=True)
class ServedModel:
    """One loaded, immutable model version as a worker serves it."""

    version: ModelVersion
    model: LoadedModel

    @property
    def features(self) -> list[str]:
        """The ``view:feature`` references the model takes, in its input order."""
        return list(self.version.signature)

    @property
    def columns(self) -> list[str]:
        """The model's input column names, in order."""
        return self.version.feature_columns


@dataclass(frozen=True)
class LoadFailure:
    """An alias this worker should serve but cannot load: which version, why, since when (monotonic)."""

    version: int | None
    reason: str
    at: float


class ModelCache:
    """Serves models by alias (hot-swapped) or by fixed version (loaded once, kept in a small LRU).

    Args:
        models: the model registry to resolve and load from.
        refresh_seconds: how often the watcher thread checks whether served aliases moved.
        on_swap: called with (old, new) after an alias was swapped to a new version.
        on_ready: called on the watcher thread once the start-up loads are done (before ``ready`` is set).
    """

    def __init__(self, models: ModelRegistry, refresh_seconds: float = 1.0,
                 on_swap: Callable[[ServedModel, ServedModel], None] | None = None,
                 on_ready: Callable[[], None] | None = None) -> None:
        self._models = models
        self._on_ready = on_ready
        self._refresh = refresh_seconds
        self._on_swap = on_swap
        self._by_alias: dict[tuple[str, str], ServedModel] = {}
        self._pinned: OrderedDict[tuple[str, int], ServedModel] = OrderedDict()
        self._failed: dict[tuple[str, str], LoadFailure] = {}
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        """Set once the models with aliases were loaded at start-up."""

    # --- request path ---------------------------------------------------------------------------

    def get(self, name: str, alias: str | None = None, version: int | None = None) -> ServedModel:
        """The served model for ``name@alias`` (default ``production``) or ``name:version``.

        Raises:
            NotRegisteredError: no such model, alias or version.
            ModelRegistryError / ArtifactIntegrityError: the artifact cannot be loaded.
        """
        if version is not None:
            key = (name, version)
            served = self._pinned.get(key)
            if served is None:
                with self._load_lock:
                    served = self._pinned.get(key) or self._load(self._models.get(name, version))
                    self._pinned[key] = served
                    while len(self._pinned) > _MAX_PINNED:
                        self._pinned.popitem(last=False)
            return served
        akey = (name, alias or DEFAULT_ALIAS)
        served = self._by_alias.get(akey)
        if served is None:
            with self._load_lock:
                served = self._by_alias.get(akey)
                if served is None:
                    served = self._load(self._models.get(name, alias=akey[1]))
                    self._by_alias[akey] = served
        return served

    def served(self) -> dict[str, int]:
        """``name@alias`` -> version this worker currently serves."""
        return {f"{n}@{a}": s.version.version for (n, a), s in list(self._by_alias.items())}

    def unloadable(self) -> dict[str, str]:
        """``name@alias`` -> why it cannot be served, for every alias that has no loaded version.

        An alias that moved to a version that cannot be loaded, but still serves its previous
        version, is not listed: the worker still answers for it (the failure is logged).
        """
        out = {}
        for (name, alias), failure in list(self._failed.items()):
            if (name, alias) in self._by_alias:
                continue
            if failure.version is None:
                out["model registry"] = f"cannot list the model aliases: {failure.reason}"
            else:
                out[f"{name}@{alias}"] = f"cannot load version {failure.version}: {failure.reason}"
        return out

    # --- background ----------------------------------------------------------------------------

    def start(self) -> None:
        """Load every aliased model, then keep following alias moves on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="pitstop-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            self._preload()
            if self._on_ready is not None:
                self._on_ready()
        finally:
            self.ready.set()
        while not self._stop.wait(self._refresh):
            try:
                self.refresh()
            except PitstopError as exc:
                log.warning("could not check model aliases: %s", exc)
            except Exception:  # the watcher must outlive any single failure
                log.exception("model alias check failed")

    def _preload(self) -> None:
        try:
            aliases = self._models.aliases()
        except PitstopError as exc:
            log.warning("could not list model aliases at start-up: %s", exc)
            self._failed[("*", "")] = LoadFailure(None, str(exc), time.monotonic())
            return
        for record in aliases:
            self._load_alias((record.name, record.alias), record.version)

    def _load_alias(self, key: tuple[str, str], version: int) -> None:
        """Load ``version`` for an alias no version of which is loaded; record a failure instead of raising."""
        try:
            served = self._load(self._models.get(key[0], version))
        except PitstopError as exc:
            log.error("cannot load model %s@%s (version %d): %s", key[0], key[1], version, exc)
            self._failed[key] = LoadFailure(version, str(exc), time.monotonic())
            return
        self._by_alias.setdefault(key, served)
        self._failed.pop(key, None)

    def _retry_failed(self, current: dict[tuple[str, str], int]) -> None:
        """Try again the aliases that could not be loaded: at once when they moved, else every few seconds."""
        if self._failed.pop(("*", ""), None) is not None:  # start-up could not list the aliases: load them now
            for key, version in current.items():
                if key not in self._by_alias:
                    self._load_alias(key, version)
        for key, failure in list(self._failed.items()):
            target = current.get(key)
            if target is None or key in self._by_alias:  # alias removed, or loaded by a request meanwhile
                self._failed.pop(key, None)
            elif target != failure.version or time.monotonic() - failure.at >= _RETRY_SECONDS:
                self._load_alias(key, target)

    def refresh(self) -> list[tuple[str, int, int]]:
        """Swap every served alias that moved; returns (name@alias, old version, new version) per swap."""
        current = {(a.name, a.alias): a.version for a in self._models.aliases()}
        self._retry_failed(current)
        swaps = []
        for key, old in list(self._by_alias.items()):
            target = current.get(key)
            if target is None or target == old.version.version:
                continue
            try:
                new = self._load(self._models.get(key[0], target))
            except PitstopError as exc:
                log.error("alias %s@%s moved to version %d, which cannot be loaded; still serving version %d: %s",
                          key[0], key[1], target, old.version.version, exc)
                continue
            self._by_alias[key] = new  # one reference swap: atomic for readers
            swaps.append((f"{key[0]}@{key[1]}", old.version.version, target))
            log.info("swapped %s@%s from version %d to %d", key[0], key[1], old.version.version, target)
            if self._on_swap is not None:
                self._on_swap(old, new)
        return swaps

    def _load(self, version: ModelVersion) -> ServedModel:
        return ServedModel(version, self._models.load(version))
