"""pitstop: a feature store with point-in-time training sets, an online store and model serving."""

import importlib
from typing import TYPE_CHECKING, Any

from pitstop.definitions import (
    Array,
    Bool,
    DeltaSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    Float32,
    Float64,
    Int32,
    Int64,
    KafkaSource,
    OnDemandFeatureView,
    ParquetSource,
    PushSource,
    RequestSource,
    String,
    Timestamp,
    on_demand_feature_view,
)
from pitstop.errors import PitstopError

__version__ = "0.1.0"

# The API tier pulls in DuckDB, pandas and pyarrow: import it on first use, so definition files,
# `pitstop --help` and `import pitstop` stay light.
_LAZY = {
    "FeatureStore": "pitstop.store",
    "ModelRegistry": "pitstop.model_registry",
    "ModelVersion": "pitstop.model_registry",
    "OnlineResponse": "pitstop.online.reader",
    "Plan": "pitstop.registry.plan",
    "RetrievalJob": "pitstop.offline.job",
    "ServingPolicy": "pitstop.model_registry",
}

if TYPE_CHECKING:
    from pitstop.model_registry import ModelRegistry, ModelVersion, ServingPolicy
    from pitstop.offline.job import RetrievalJob
    from pitstop.online.reader import OnlineResponse
    from pitstop.registry.plan import Plan
    from pitstop.store import FeatureStore


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pitstop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "Array",
    "Bool",
    "DeltaSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "KafkaSource",
    "ModelRegistry",
    "ModelVersion",
    "OnDemandFeatureView",
    "OnlineResponse",
    "ParquetSource",
    "PitstopError",
    "Plan",
    "PushSource",
    "RequestSource",
    "RetrievalJob",
    "ServingPolicy",
    "String",
    "Timestamp",
    "on_demand_feature_view",
]
