"""Model artifacts: a content-addressed local or S3 store and per-flavor save/load."""

from pitstop.artifacts.base import ArtifactStorage
from pitstop.artifacts.factory import open_artifact_store
from pitstop.artifacts.flavors import FLAVORS, LoadedModel, load_model, save_model
from pitstop.artifacts.store import ArtifactContent, ArtifactStore, read_artifact, sha256_of

__all__ = ["FLAVORS", "ArtifactContent", "ArtifactStorage", "ArtifactStore", "LoadedModel", "load_model",
           "open_artifact_store", "read_artifact", "save_model", "sha256_of"]
