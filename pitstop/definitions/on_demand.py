"""OnDemandFeatureView: features computed at request time from request data and other features.

The same Python function runs when a training set is built and when online features are read,
so training and serving cannot drift apart. Two calling conventions (``mode``):

* ``"pandas"`` (default): ``f(pd.DataFrame) -> pd.DataFrame``; vectorized, best for training sets.
* ``"python"``: ``f(dict[str, list]) -> dict[str, list]``, one list per column; no DataFrame is
  built, which saves most of an online request's transformation time (see docs/benchmarks.md).
  Missing inputs arrive as ``None``.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field as PydanticField
from pydantic import field_validator, model_validator

from pitstop.definitions.base import Definition, caller_location, check_name
from pitstop.definitions.feature_view import FeatureView, FeatureViewProjection
from pitstop.definitions.field import Field
from pitstop.definitions.sources import RequestSource

if TYPE_CHECKING:
    import pandas as pd

Transform = Callable[["pd.DataFrame"], "pd.DataFrame"]
PythonTransform = Callable[[dict[str, list[Any]]], Mapping[str, Sequence[Any]]]
Mode = Literal["pandas", "python"]


class OnDemandFeatureView(Definition):
    """Features computed by ``udf`` from feature views' features and request data.

    Args:
        name: unique name; references are ``"name:feature"``.
        sources: feature views (or projections) and RequestSources whose values the udf reads.
        schema: the output fields the udf returns.
        udf: ``f(inputs: pd.DataFrame) -> pd.DataFrame``; input columns are the short feature
            names of the sources plus the request fields, one row per entity row. With
            ``mode="python"``: ``f(inputs: dict[str, list]) -> dict[str, list]``, same columns.
        mode: ``"pandas"`` (default) or ``"python"``, the udf's calling convention.

    Usually written with the ``@on_demand_feature_view(sources=..., schema=...)`` decorator.
    """

    if TYPE_CHECKING:  # the signature type checkers see (pydantic validates at run time)
        def __init__(self, name: str, *, sources: list[FeatureView | FeatureViewProjection | RequestSource],
                     schema: list[Field], udf: Any, mode: Mode = ..., udf_source: str = ..., description: str = ...,
                     tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    kind: ClassVar[str] = "on-demand feature view"

    sources: list[FeatureView | FeatureViewProjection | RequestSource]
    schema_: list[Field] = PydanticField(alias="schema")
    udf: Any
    mode: Mode = "pandas"
    udf_source: str = ""
    description: str = ""
    tags: dict[str, str] = PydanticField(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "on-demand feature view")

    @model_validator(mode="after")
    def _check(self) -> OnDemandFeatureView:
        if not callable(self.udf):
            kind = "a dict of lists" if self.mode == "python" else "a pandas DataFrame"
            raise ValueError(f"udf: must be a function taking and returning {kind}")
        if not self.schema_:
            raise ValueError("schema: declare at least one output field")
        seen: dict[str, str] = {}
        for name, origin in self.input_columns():
            if name in seen:
                raise ValueError(f"sources: input column {name!r} comes from both {seen[name]!r} and {origin!r}")
            seen[name] = origin
        if not self.udf_source:
            try:
                object.__setattr__(self, "udf_source", textwrap.dedent(inspect.getsource(self.udf)))
            except (OSError, TypeError):
                pass
        return self

    def input_columns(self) -> list[tuple[str, str]]:
        """(column, source name) pairs the udf receives."""
        cols: list[tuple[str, str]] = []
        for src in self.sources:
            if isinstance(src, RequestSource):
                cols += [(f.name, src.name) for f in src.schema_]
            elif isinstance(src, FeatureViewProjection):
                cols += [(f, src.name) for f in src.features]
            else:
                cols += [(f, src.name) for f in src.feature_names]
        return cols

    @property
    def features(self) -> list[Field]:
        """Output fields."""
        return list(self.schema_)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.schema_]

    @property
    def request_fields(self) -> list[Field]:
        """Fields that must come with the request (or the entity rows)."""
        return [f for src in self.sources if isinstance(src, RequestSource) for f in src.schema_]

    def view_inputs(self) -> list[tuple[str, list[str]]]:
        """(view name, feature names) this transformation reads."""
        out = []
        for src in self.sources:
            if isinstance(src, FeatureViewProjection):
                out.append((src.name, list(src.features)))
            elif isinstance(src, FeatureView):
                out.append((src.name, src.feature_names))
        return out

    def transform(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Run the udf on a DataFrame (either mode) and check its output against the declared schema."""
        import pandas as pd

        if self.mode == "python":
            columns = {c: [None if _missing(v) else v for v in inputs[c].tolist()] for c in inputs.columns}
            out_columns = self.transform_columns(columns, len(inputs))
            return pd.DataFrame(out_columns, index=inputs.index)
        try:
            out = self.udf(inputs)
        except Exception as exc:
            raise self.error(f"udf raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, pd.DataFrame):
            raise self.error(f"udf must return a pandas DataFrame, got {type(out).__name__}")
        missing = [n for n in self.feature_names if n not in out.columns]
        if missing:
            raise self.error(f"udf result lacks declared column(s) {missing}")
        if len(out) != len(inputs):
            raise self.error(f"udf returned {len(out)} rows for {len(inputs)} input rows")
        return out if list(out.columns) == self.feature_names else out[self.feature_names]

    def transform_columns(self, inputs: dict[str, list[Any]], rows: int) -> dict[str, list[Any]]:
        """Run the udf on columns given as lists of ``rows`` values; declared outputs as lists.

        In pandas mode the columns go through a DataFrame (missing values come back as None);
        in python mode the udf gets the lists themselves.
        """
        if self.mode == "pandas":
            import pandas as pd

            frame = pd.DataFrame(inputs) if inputs else pd.DataFrame(index=range(rows))
            out = self.transform(frame)
            return {n: [None if _missing(v) else v for v in out[n].tolist()] for n in self.feature_names}
        try:
            out = self.udf(inputs)
        except Exception as exc:
            raise self.error(f"udf raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, Mapping):
            raise self.error(f"a python-mode udf must return a dict of lists, got {type(out).__name__}")
        missing = [n for n in self.feature_names if n not in out]
        if missing:
            raise self.error(f"udf result lacks declared key(s) {missing}")
        result: dict[str, list[Any]] = {}
        for name in self.feature_names:
            column = out[name]
            values = list(column) if isinstance(column, list | tuple) else (
                column.tolist() if hasattr(column, "tolist") else None)  # numpy arrays, pandas Series
            if not isinstance(values, list):
                raise self.error(f"udf result {name!r} must be a list of {rows} values, got {type(column).__name__}")
            if len(values) != rows:
                raise self.error(f"udf returned {len(values)} values for {name!r} from {rows} input rows")
            result[name] = [None if _missing(v) else v for v in values]
        return result

    def __getitem__(self, names: list[str]) -> FeatureViewProjection:
        unknown = [n for n in names if n not in self.feature_names]
        if unknown:
            raise self.error(f"has no feature {unknown[0]!r}")
        return FeatureViewProjection(view=self, features=list(names))

    def __hash__(self) -> int:
        return hash((self.kind, self.name))


def on_demand_feature_view(
    *,
    sources: list[FeatureView | FeatureViewProjection | RequestSource],
    schema: list[Field],
    name: str | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
    mode: Mode = "pandas",
) -> Callable[[Any], OnDemandFeatureView]:
    """Decorator form: the function's name becomes the view name unless ``name`` is given.

    ``mode="python"`` declares a function over a dict of lists instead of a DataFrame.
    """
    location = caller_location()

    def wrap(fn: Transform | PythonTransform) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name or fn.__name__,
            sources=sources,
            schema=schema,
            udf=fn,
            mode=mode,
            description=description or (fn.__doc__ or "").strip(),
            tags=tags or {},
            _location=location,
        )

    return wrap


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA: what the online response and training sets carry as null."""
    if value is None:
        return True
    pd = sys.modules.get("pandas")  # a pandas missing value can only exist once pandas is imported
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # arrays and other values without a scalar comparison
        return False
