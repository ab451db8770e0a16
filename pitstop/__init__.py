"""pitstop: a feature store with point-in-time training sets, an online store and model serving."""

from pitstop.definitions import (
    Array,
    Bool,
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
from pitstop.model_registry import ModelRegistry, ModelVersion, ServingPolicy
from pitstop.offline.job import RetrievalJob
from pitstop.store import FeatureStore

__version__ = "0.1.0"

__all__ = [
    "Array",
    "Bool",
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
    "ParquetSource",
    "PitstopError",
    "PushSource",
    "RequestSource",
    "RetrievalJob",
    "ServingPolicy",
    "String",
    "Timestamp",
    "on_demand_feature_view",
]
