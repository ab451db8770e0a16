"""Request and response bodies of the scoring service (they also make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

Scalar = StrictInt | StrictFloat | StrictStr | StrictBool | None
"""One JSON value of an entity key or request-data column (checked against the definitions later)."""

Columns = dict[str, list[Scalar]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeaturesRequest(_Body):
    """POST /features: online feature values for a batch of entities (Feast's request shape)."""

    feature_service: StrictStr | None = Field(None, min_length=1, description="A registered feature service.")
    features: list[StrictStr] | None = Field(
        None, min_length=1, description="'view:feature' references; give this or feature_service."
    )
    entities: Columns = Field(
        ..., min_length=1, description="Join-key columns, e.g. {\"driver_id\": [1001, 1002]}.",
        examples=[{"driver_id": [1001, 1002]}],
    )
    request_data: Columns | None = Field(None, description="Columns that on-demand features need.")
    full_feature_names: StrictBool = Field(False, description="Name outputs 'view__feature'.")

    @model_validator(mode="after")
    def _one_selection(self) -> FeaturesRequest:
        if (self.features is None) == (self.feature_service is None):
            raise ValueError("give exactly one of 'features' (a list of 'view:feature') or 'feature_service'")
        return self


class FeatureColumn(BaseModel):
    """One output column, entity keys first."""

    values: list[Any]
    statuses: list[Literal["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"]]
    event_timestamps: list[datetime | None]


class FeaturesMetadata(BaseModel):
    feature_names: list[str]


class FeaturesResponse(BaseModel):
    """POST /features answer: one result per column (entity keys, then features in request order)."""

    metadata: FeaturesMetadata
    results: list[FeatureColumn]


class PredictRequest(_Body):
    """POST /predict: fetch a model's features for a batch of entities and score them."""

    model: StrictStr = Field(..., min_length=1, description="A registered model name.", examples=["trip_completion"])
    alias: StrictStr | None = Field(
        None, min_length=1, description="The alias to serve (default 'production'); or give version."
    )
    version: StrictInt | None = Field(None, ge=1, description="A fixed model version instead of an alias.")
    entities: Columns = Field(..., min_length=1, examples=[{"driver_id": [1001], "customer_id": [2001]}])
    request_data: Columns | None = Field(None, description="Columns that the model's on-demand features need.")
    return_features: StrictBool = Field(False, description="Also return the feature values and statuses used.")
    request_id: StrictStr | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
        description="Your id for this request (printable ASCII, no spaces), kept in the prediction log so "
        "delayed labels can be joined to it; default: a fresh one, returned in the answer.")

    @model_validator(mode="after")
    def _alias_or_version(self) -> PredictRequest:
        if self.alias is not None and self.version is not None:
            raise ValueError("give 'alias' or 'version', not both")
        return self


class PredictFeatures(BaseModel):
    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]


class PredictResponse(BaseModel):
    """POST /predict answer: one prediction per entity, in request order."""

    model: str
    version: int
    request_id: str
    """The request's id in the prediction log (the caller's, or a fresh one)."""
    predictions: list[Any]
    features: PredictFeatures | None = None


class PushRequest(_Body):
    """POST /push/{source}: rows for every view fed by a push source."""

    rows: list[dict[str, Scalar]] = Field(..., min_length=1, description="Rows with join keys, the event timestamp "
                                          "(ISO 8601 string or an epoch number in timestamp_unit) and feature values.")
    to: Literal["online", "offline", "online_and_offline"] = "online"
    timestamp_unit: Literal["s", "ms", "us", "ns"] = Field(
        "s", description="The unit of numeric times: epoch seconds (default), milliseconds, microseconds or "
        "nanoseconds. Times must fall between 1900 and now plus online_store.max_future_seconds.")


class PushResponse(BaseModel):
    written: int
    stale: int


class ModelInfo(BaseModel):
    name: str
    version: int
    flavor: str
    aliases: list[str]
    feature_service: str | None
    signature: list[str]
    metrics: dict[str, float]
    created_at: datetime
    served: bool = Field(description="Whether this worker currently serves this version.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class ErrorField(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    error: str
    message: str
    fields: list[ErrorField]
