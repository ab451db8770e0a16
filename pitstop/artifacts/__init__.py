"""Model artifacts: a content-addressed local store and per-flavor save/load."""

from pitstop.artifacts.flavors import FLAVORS, LoadedModel, load_model, save_model
from pitstop.artifacts.store import ArtifactContent, ArtifactStore, read_artifact, sha256_of

__all__ = ["FLAVORS", "ArtifactContent", "ArtifactStore", "LoadedModel", "load_model", "read_artifact", "save_model", "sha256_of"]
