"""Model artifacts: a content-addressed local store and per-flavor save/load."""

from pitstop.artifacts.flavors import FLAVORS, LoadedModel, load_model, save_model
from pitstop.artifacts.store import ArtifactStore, sha256_of

__all__ = ["FLAVORS", "ArtifactStore", "LoadedModel", "load_model", "save_model", "sha256_of"]
