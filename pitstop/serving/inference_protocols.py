"""Standard inference protocols for callers that send the model's inputs themselves.

* MLflow's scoring protocol, ``POST /invocations``: ``dataframe_split``, ``dataframe_records``,
  ``instances`` or ``inputs``; answers ``{"predictions": [...]}``.
* The Open Inference Protocol (KServe V2): ``POST /v2/models/{name}[/versions/{v}]/infer`` with
  named tensors, plus the server and model metadata and readiness routes.

Both score with the same model cache (hot swap included), metrics, prediction log and auth scope
(``predict``) as ``/predict``; only the source of the inputs differs: the request, not the online
store. Inputs are matched to the model's input columns by name (or, for a single 2-D tensor or a
list of rows, by position in the model's column order); a missing or null input answers 422 naming
the request field unless the model's registration declares a default for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from pitstop.serving.errors import ApiError
from pitstop.serving.model_cache import ServedModel
from pitstop.serving.scoring import run_model

__all__ = [
    "InferRequest",
    "InvocationsRequest",
    "columns_from_invocation",
    "columns_from_tensors",
    "infer_response",
    "model_frame",
    "model_metadata",
]

MAX_ROWS = 10_000
"""Most rows one /invocations or /infer request may score."""


class DataFrameSplit(BaseModel):
    """pandas' ``split`` orientation: column names and rows of values."""

    model_config = ConfigDict(extra="forbid")
    columns: list[StrictStr] = Field(..., min_length=1)
    data: list[list[Any]] = Field(..., min_length=1, max_length=MAX_ROWS)
    index: list[Any] | None = None


class InvocationsRequest(BaseModel):
    """POST /invocations (MLflow's scoring protocol): exactly one of the four input forms."""

    model_config = ConfigDict(extra="forbid")
    dataframe_split: DataFrameSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = Field(None, min_length=1, max_length=MAX_ROWS)
    instances: list[Any] | None = Field(None, min_length=1, max_length=MAX_ROWS)
    inputs: list[Any] | dict[str, list[Any]] | None = Field(None, min_length=1)
    params: dict[str, Any] | None = Field(None, description="Accepted for compatibility; pitstop models take none.")

    @model_validator(mode="after")
    def _one_form(self) -> InvocationsRequest:
        given = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'dataframe_split', 'dataframe_records', 'instances' or 'inputs'"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


Datatype = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                   "FP16", "FP32", "FP64", "BYTES"]


class InferTensor(BaseModel):
    """One named input tensor of an Open Inference Protocol request."""

    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(..., min_length=1)
    shape: list[StrictInt] = Field(..., min_length=1, max_length=2)
    datatype: Datatype
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """POST /v2/models/{name}/infer (Open Inference Protocol)."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = None
    inputs: list[InferTensor] = Field(..., min_length=1)
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _rows_by_position(rows: list[Any], columns: list[str], field: str) -> dict[str, list[Any]]:
    """Rows given as lists in the model's column order (or scalars, for a one-input model)."""
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            if len(columns) != 1:
                raise ApiError(422, "invalid_request", f"row {i} is a single value, but the model takes "
                               f"{len(columns)} inputs ({', '.join(columns)}): send a list or an object per row",
                               f"{field}[{i}]")
            row = [row]
        if len(row) != len(columns):
            raise ApiError(422, "invalid_request", f"row {i} has {len(row)} values; the model takes {len(columns)} "
                           f"inputs in this order: {', '.join(columns)}", f"{field}[{i}]")
        for c, v in zip(columns, row, strict=True):
            out[c].append(v)
    return out


def _records(rows: list[Any], field: str) -> dict[str, list[Any]]:
    """Rows given as objects: one column per name seen (absent values are None)."""
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ApiError(422, "invalid_request", f"row {i} is not an object; give every row as an object "
                           "(column name to value) or every row as a list", f"{field}[{i}]")
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


def columns_from_invocation(body: InvocationsRequest, columns: list[str]) -> tuple[dict[str, list[Any]], str]:
    """The request's values as named columns, and the name of the request field they came from."""
    if body.dataframe_split is not None:
        split = body.dataframe_split
        for i, row in enumerate(split.data):
            if len(row) != len(split.columns):
                raise ApiError(422, "invalid_request", f"row {i} has {len(row)} values for {len(split.columns)} "
                               "columns", f"dataframe_split.data[{i}]")
        return {c: [row[j] for row in split.data] for j, c in enumerate(split.columns)}, "dataframe_split"
    if body.dataframe_records is not None:
        return _records(body.dataframe_records, "dataframe_records"), "dataframe_records"
    rows = body.instances if body.instances is not None else body.inputs
    field = "instances" if body.instances is not None else "inputs"
    if isinstance(rows, dict):  # {"inputs": {"col": [values]}}
        lengths = {len(v) for v in rows.values()}
        if len(lengths) != 1:
            raise ApiError(422, "invalid_request", "every input column must hold the same number of values "
                           f"(got {sorted(lengths)})", field)
        if lengths.pop() > MAX_ROWS:
            raise ApiError(422, "invalid_request", f"at most {MAX_ROWS} rows per request", field)
        return dict(rows), field
    assert rows is not None
    if len(rows) > MAX_ROWS:
        raise ApiError(422, "invalid_request", f"at most {MAX_ROWS} rows per request", field)
    if all(isinstance(r, dict) for r in rows):
        return _records(rows, field), field
    return _rows_by_position(rows, columns, field), field


def _flat(data: list[Any]) -> list[Any]:
    """Row-major flattening of a nested tensor body (flat bodies come back as they are)."""
    if not data or not isinstance(data[0], list):
        return data
    return [v for row in data for v in (_flat(row) if row and isinstance(row[0], list) else row)]


def columns_from_tensors(body: InferRequest, columns: list[str]) -> tuple[dict[str, list[Any]], str]:
    """Named columns from V2 tensors: one tensor per model input, or one [rows, inputs] tensor."""
    if len(body.inputs) == 1 and len(body.inputs[0].shape) == 2 and body.inputs[0].name not in columns:
        tensor = body.inputs[0]
        rows, width = tensor.shape
        data = _flat(tensor.data)
        if width != len(columns) or rows < 0 or len(data) != rows * width:
            raise ApiError(422, "invalid_request", f"tensor {tensor.name!r} has shape {tensor.shape} and "
                           f"{len(data)} values; the model takes [rows, {len(columns)}] in this column order: "
                           f"{', '.join(columns)} (or one tensor per input, named after it)", "inputs[0]")
        if rows > MAX_ROWS:
            raise ApiError(422, "invalid_request", f"at most {MAX_ROWS} rows per request", "inputs[0].shape")
        return {c: data[j::width] for j, c in enumerate(columns)}, "inputs"
    out: dict[str, list[Any]] = {}
    for i, tensor in enumerate(body.inputs):
        data = _flat(tensor.data)
        size = math.prod(tensor.shape)
        if any(d < 0 for d in tensor.shape) or size != len(data) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise ApiError(422, "invalid_request", f"tensor {tensor.name!r} has shape {tensor.shape} and {len(data)} "
                           "values; a per-input tensor is [rows] or [rows, 1] with rows values", f"inputs[{i}]")
        if tensor.name in out:
            raise ApiError(422, "invalid_request", f"tensor {tensor.name!r} is given twice", f"inputs[{i}].name")
        out[tensor.name] = data
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise ApiError(422, "invalid_request", f"input tensors hold different numbers of rows: {sorted(lengths)}",
                       "inputs")
    if lengths and lengths.pop() > MAX_ROWS:
        raise ApiError(422, "invalid_request", f"at most {MAX_ROWS} rows per request", "inputs")
    return out, "inputs"


def _kind_check(typ: pa.DataType) -> tuple[str, Any] | None:
    """What a declared feature type accepts from JSON: (a description, a predicate), or None for anything."""
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        return "a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    if pa.types.is_boolean(typ):
        return "true or false", lambda v: isinstance(v, bool)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "text", lambda v: isinstance(v, str)
    return None


def model_frame(served: ServedModel, given: dict[str, list[Any]], field: str,
                types: Mapping[str, pa.DataType] | None = None) -> tuple[pd.DataFrame | np.ndarray, int]:
    """The model's input frame in its column order from request columns (extra columns are ignored).

    ``types`` are the declared types of the model's input features (from its feature service):
    a value of the wrong kind (text for a number, ...) is refused rather than handed to the model.

    Raises:
        ApiError: 422 naming the request field when an input column is missing, a value is of the
            wrong kind, or a value is missing or null and the model's registration declares no default for it.
    """
    columns = served.columns
    if not columns:
        mv = served.version
        raise ApiError(422, "model_without_signature", f"model {mv.name!r} version {mv.version} was registered "
                       "without input columns (no feature service), so its inputs cannot be matched", "model")
    absent = [c for c in columns if c not in given]
    defaults = served.version.serving.defaults
    if absent and not all(c in defaults for c in absent):
        known = ", ".join(sorted(given)) or "none"
        raise ApiError(422, "missing_input", f"missing input column(s) {', '.join(c for c in absent if c not in defaults)}; "
                       f"model {served.version.name!r} takes {', '.join(columns)} (got {known})", field)
    rows = len(next(iter(given.values()))) if given else 0
    if rows == 0:
        raise ApiError(422, "invalid_request", "no rows to score", field)
    values: dict[str, list[Any]] = {}
    for c in columns:
        column = given.get(c)
        if column is None:
            values[c] = [defaults[c]] * rows
            continue
        bad = [i for i, v in enumerate(column) if _missing(v)]
        if bad:
            if c not in defaults:
                raise ApiError(422, "missing_feature", f"input {c!r} is null in row {bad[0]}"
                               + (f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else "")
                               + f"; model {served.version.name!r} declares no default for it", f"{field}.{c}[{bad[0]}]")
            column = [defaults[c] if i in set(bad) else v for i, v in enumerate(column)]
        declared = types.get(c) if types else None
        check = _kind_check(declared) if declared is not None else None
        if check is not None:
            wrong = next((i for i, v in enumerate(column) if not check[1](v)), None)
            if wrong is not None:
                raise ApiError(422, "invalid_value", f"input {c!r} must be {check[0]} (the feature is {declared}); "
                               f"row {wrong} has {column[wrong]!r}"[:300], f"{field}.{c}[{wrong}]")
        values[c] = column
    try:
        block = np.array([values[c] for c in columns], dtype=np.float64).T
    except (TypeError, ValueError):
        return pd.DataFrame(values, columns=columns), rows
    if served.model.accepts_array:
        return block, rows
    return pd.DataFrame(block, columns=columns, copy=False), rows


def score(served: ServedModel, inputs: pd.DataFrame | np.ndarray) -> list[Any]:
    """One model call; a model that fails on the caller's values answers 422, not 500."""
    try:
        return run_model(served, inputs)
    except (ValueError, TypeError) as exc:
        mv = served.version
        raise ApiError(422, "invalid_input", f"model {mv.name!r} version {mv.version} refused the inputs: {exc}",
                       "inputs") from exc


def _datatype(values: np.ndarray) -> str:
    if values.dtype == np.bool_:
        return "BOOL"
    if np.issubdtype(values.dtype, np.integer):
        return "INT64"
    if np.issubdtype(values.dtype, np.floating):
        return "FP64"
    return "BYTES"


def infer_response(served: ServedModel, predictions: list[Any], request_id: str) -> dict[str, Any]:
    """The V2 answer: one ``predict`` output tensor, row-major, with its shape and datatype."""
    array = np.asarray(predictions)
    return {"model_name": served.version.name, "model_version": str(served.version.version), "id": request_id,
            "outputs": [{"name": "predict", "shape": list(array.shape), "datatype": _datatype(array),
                         "data": array.reshape(-1).tolist()}]}


def model_metadata(served: ServedModel, versions: list[int]) -> dict[str, Any]:
    """V2 model metadata: the inputs are the model's columns (float64 unless the signature says otherwise)."""
    mv = served.version
    return {"name": mv.name, "versions": [str(v) for v in versions], "platform": f"pitstop-{mv.flavor}",
            "inputs": [{"name": c, "datatype": "FP64", "shape": [-1]} for c in served.columns],
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}]}
