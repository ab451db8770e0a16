"""User-facing definitions: pure, frozen models that never do I/O."""

from pitstop.definitions.dtypes import Array, Bool, DType, Float32, Float64, Int32, Int64, String, Timestamp
from pitstop.definitions.entity import Entity
from pitstop.definitions.feature_service import FeatureService
from pitstop.definitions.feature_view import FeatureView, FeatureViewProjection
from pitstop.definitions.field import Field
from pitstop.definitions.on_demand import OnDemandFeatureView, on_demand_feature_view
from pitstop.definitions.refs import FeatureRef
from pitstop.definitions.sources import DeltaSource, KafkaSource, ParquetSource, PushSource, RequestSource

__all__ = [
    "Array", "Bool", "DType", "Entity", "FeatureRef", "FeatureService", "FeatureView", "FeatureViewProjection",
    "DeltaSource", "Field", "Float32", "Float64", "Int32", "Int64", "KafkaSource", "OnDemandFeatureView", "ParquetSource",
    "PushSource", "RequestSource", "String", "Timestamp", "on_demand_feature_view",
]
