"""Per-flavor save and load of model objects; each flavor's library is imported only when used.

Flavors: ``sklearn`` and ``pyfunc`` (cloudpickle), ``lightgbm`` (text model), ``xgboost`` (JSON model),
``onnx`` (serialized graph run with onnxruntime) and ``mlflow`` (an MLflow model directory, loaded with
``mlflow.pyfunc``). Pickled artifacts run code when loaded: load
only artifacts from a store you trust. Loading reads the artifact's bytes once, checks their sha256
and builds the model from those same bytes (docs/security.md).
"""

from __future__ import annotations

import importlib
import pickle
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import cloudpickle

if TYPE_CHECKING:  # imported where used: the CLI lists flavors without paying for pandas
    import numpy as np
    import pandas as pd

from pitstop.artifacts.store import ArtifactContent
from pitstop.errors import ModelRegistryError

FLAVORS = ("sklearn", "lightgbm", "xgboost", "onnx", "pyfunc", "mlflow")
PICKLE_FLAVORS = ("sklearn", "pyfunc", "mlflow")
"""Flavors whose artifacts are pickles: loading one runs code (refused when ``registry.allow_pickle`` is false)."""

_EXTRAS = {"sklearn": "sklearn", "lightgbm": "lightgbm", "xgboost": "xgboost", "onnxruntime": "onnx", "onnx": "onnx",
           "mlflow": "mlflow"}
_FILENAMES = {"sklearn": "model.pkl", "pyfunc": "model.pkl", "lightgbm": "model.txt", "xgboost": "model.json",
              "onnx": "model.onnx", "mlflow": "MLmodel"}


def _require(module: str, flavor: str) -> ModuleType:
    """Import ``module`` or explain which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module, flavor)
        raise ModelRegistryError(
            f"the {flavor!r} flavor needs the {module} package: pip install 'pitstop[{extra}]'"
        ) from exc


def check_flavor(flavor: str) -> str:
    """Return ``flavor`` if it is known.

    Raises:
        ModelRegistryError: ``flavor`` is not one of ``FLAVORS``.
    """
    if flavor not in FLAVORS:
        raise ModelRegistryError(f"unknown model flavor {flavor!r}; use one of: {', '.join(FLAVORS)}")
    return flavor


# --- save ---------------------------------------------------------------------------------------


def save_model(flavor: str, model: Any, directory: Path) -> Path:
    """Serialize ``model`` into ``directory`` in the flavor's format; returns the written file.

    Raises:
        ModelRegistryError: the flavor is unknown, its library is missing, or ``model`` does not fit it.
    """
    target = directory / _FILENAMES[check_flavor(flavor)]
    _SAVERS[flavor](model, target)
    return target


def _save_pickle(model: Any, target: Path) -> None:
    if not callable(getattr(model, "predict", None)):
        raise ModelRegistryError(f"{type(model).__name__} has no predict method; sklearn and pyfunc models need one")
    with target.open("wb") as fh:
        cloudpickle.dump(model, fh)


def _save_lightgbm(model: Any, target: Path) -> None:
    lgb = _require("lightgbm", "lightgbm")
    booster = getattr(model, "booster_", model)  # the sklearn wrapper holds a Booster
    if not isinstance(booster, lgb.Booster):
        raise ModelRegistryError(f"expected a lightgbm Booster or LGBMModel, got {type(model).__name__}")
    booster.save_model(str(target))


def _save_xgboost(model: Any, target: Path) -> None:
    xgb = _require("xgboost", "xgboost")
    if not isinstance(model, xgb.Booster | xgb.XGBModel):
        raise ModelRegistryError(f"expected an xgboost Booster or XGBModel, got {type(model).__name__}")
    model.save_model(str(target))


def _save_onnx(model: Any, target: Path) -> None:
    if isinstance(model, bytes | bytearray):
        data = bytes(model)
    elif callable(getattr(model, "SerializeToString", None)):
        data = model.SerializeToString()
    else:
        raise ModelRegistryError(f"expected an onnx ModelProto or its bytes, got {type(model).__name__}")
    target.write_bytes(data)


def _save_mlflow(model: Any, target: Path) -> None:
    raise ModelRegistryError("an mlflow model is registered from its directory (the one holding MLmodel) or with "
                             "`pitstop models register NAME --from-mlflow models:/NAME@ALIAS`, not as an object")


_SAVERS: dict[str, Callable[[Any, Path], None]] = {
    "sklearn": _save_pickle, "pyfunc": _save_pickle, "lightgbm": _save_lightgbm, "xgboost": _save_xgboost,
    "onnx": _save_onnx, "mlflow": _save_mlflow,
}


# --- load ---------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A loaded model version with one calling convention for every flavor.

    Attributes:
        flavor: the flavor it was registered with.
        raw: the underlying object (estimator, Booster, InferenceSession, pyfunc object).
        feature_columns: the input column names, in order; a DataFrame passed to ``predict`` that
            holds all of them is reduced to them in this order.
    """

    flavor: str
    raw: Any
    feature_columns: list[str] = field(default_factory=list)
    _predict: Callable[[Any], Any] | None = field(default=None, repr=False)

    def _inputs(self, data: pd.DataFrame | np.ndarray | Sequence[Any]) -> Any:
        import numpy as np
        import pandas as pd

        if isinstance(data, pd.DataFrame) and self.feature_columns and list(data.columns) != self.feature_columns \
                and set(self.feature_columns) <= set(data.columns):
            return data[self.feature_columns]
        return data if isinstance(data, pd.DataFrame) else np.asarray(data)

    def predict(self, data: pd.DataFrame | np.ndarray | Sequence[Any]) -> np.ndarray:
        """Predict for a DataFrame (columns by name) or a 2-D array (columns in signature order)."""
        import numpy as np

        predict = self._predict or self.raw.predict
        return np.asarray(predict(self._inputs(data)))

    @property
    def accepts_array(self) -> bool:
        """Whether a float64 array in ``feature_columns`` order can be passed instead of a DataFrame.

        True for lightgbm and onnx, and for sklearn estimators fitted without feature names or with
        exactly these names in this order (their DataFrame input checks cost more than the prediction).
        """
        if self.flavor in ("lightgbm", "onnx"):
            return True
        if self.flavor != "sklearn" or self._predict is not None:
            return False
        names = getattr(self.raw, "feature_names_in_", None)
        return names is None or [str(n) for n in names] == self.feature_columns

    def predict_array(self, array: np.ndarray, *, proba: bool = False) -> np.ndarray:
        """Predict from a 2-D float array whose columns are ``feature_columns`` (see ``accepts_array``)."""
        import numpy as np

        method = self._proba_method() if proba else (self._predict or self.raw.predict)
        if self.flavor != "sklearn":
            return np.asarray(method(array))
        import sklearn

        with warnings.catch_warnings(), sklearn.config_context(assume_finite=True):
            # the array's columns are the names the estimator was fitted with, in order
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return np.asarray(method(array))

    def predict_proba(self, data: pd.DataFrame | np.ndarray | Sequence[Any]) -> np.ndarray:
        """Class probabilities from the model's ``predict_proba`` (sklearn classifiers, pyfunc objects having one).

        Raises:
            ModelRegistryError: the model has no ``predict_proba``.
        """
        import numpy as np

        return np.asarray(self._proba_method()(self._inputs(data)))

    def _proba_method(self) -> Callable[[Any], Any]:
        method = getattr(self.raw, "predict_proba", None)
        if self._predict is not None or not callable(method):
            raise ModelRegistryError(f"this {self.flavor} model ({type(self.raw).__name__}) has no predict_proba")
        return method


def _model_file(content: ArtifactContent, flavor: str) -> tuple[str, bytes]:
    """The model file inside an artifact: its one file, or the flavor's file of a directory."""
    files = content.files
    preferred = sorted(name for name in files if name.rsplit("/", 1)[-1] == _FILENAMES[flavor])
    if preferred or len(files) == 1:
        name = (preferred or sorted(files))[0]
        return name, files[name]
    raise ModelRegistryError(f"cannot tell which file of {content.path} is the {flavor} model; register the file itself")


def load_model(flavor: str, content: ArtifactContent, feature_columns: list[str] | None = None) -> LoadedModel:
    """Load a model from an artifact's bytes (as read and verified by ``ArtifactStore.read_verified``).

    The model is built from ``content``'s bytes only; the file is not opened again, so what was
    verified is exactly what runs.

    Raises:
        ModelRegistryError: the flavor is unknown, its library is missing, or the bytes cannot be read.
    """
    check_flavor(flavor)
    if flavor == "mlflow":
        raw = _load_mlflow(content)
        return LoadedModel(flavor, raw, list(feature_columns or []), _mlflow_predict(raw))
    name, data = _model_file(content, flavor)
    where = f"{content.path}" if len(content.files) == 1 else f"{content.path}/{name}"
    try:
        raw, predict = _LOADERS[flavor](data, where)
    except ModelRegistryError:
        raise
    except Exception as exc:
        raise ModelRegistryError(f"cannot load the {flavor} model from {where}: {type(exc).__name__}: {exc}") from exc
    return LoadedModel(flavor, raw, list(feature_columns or []), predict)


def _load_pickle(data: bytes, where: str, flavor: str) -> Any:
    try:
        return pickle.loads(data)
    except ModuleNotFoundError as exc:
        raise ModelRegistryError(
            f"the {flavor} model in {where} needs the {exc.name} package, which is not installed"
            + (": pip install 'pitstop[sklearn]'" if exc.name == "sklearn" else "")
        ) from exc


def _load_sklearn(data: bytes, where: str) -> tuple[Any, None]:
    _require("sklearn", "sklearn")
    return _load_pickle(data, where, "sklearn"), None


def _load_pyfunc(data: bytes, where: str) -> tuple[Any, None]:
    obj = _load_pickle(data, where, "pyfunc")
    if isinstance(obj, type):  # a class was registered: models are its instances
        obj = obj()
    if not callable(getattr(obj, "predict", None)):
        raise ModelRegistryError(f"the pyfunc object in {where} ({type(obj).__name__}) has no predict method")
    return obj, None


def _load_lightgbm(data: bytes, where: str) -> tuple[Any, None]:
    lgb = _require("lightgbm", "lightgbm")
    return lgb.Booster(model_str=data.decode()), None


def _load_xgboost(data: bytes, where: str) -> tuple[Any, Callable[[Any], Any]]:
    xgb = _require("xgboost", "xgboost")
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    return booster, lambda frame: booster.predict(xgb.DMatrix(frame))


def _load_onnx(data: bytes, where: str) -> tuple[Any, Callable[[Any], Any]]:
    ort = _require("onnxruntime", "onnx")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def predict(frame: Any) -> Any:
        import numpy as np
        import pandas as pd

        array = frame.to_numpy() if isinstance(frame, pd.DataFrame) else np.asarray(frame)
        return session.run(None, {input_name: array.astype(np.float32)})[0]

    return session, predict


def _load_mlflow(content: ArtifactContent) -> Any:
    """An MLflow model directory's verified bytes, written to a private folder and loaded with ``mlflow.pyfunc``.

    The folder lives as long as the loaded model (some flavors read their files lazily).
    """
    import shutil
    import tempfile
    import weakref

    mlflow_pyfunc = _require("mlflow.pyfunc", "mlflow")
    marks = sorted((name for name in content.files if name.rsplit("/", 1)[-1] == "MLmodel"), key=len)
    if not marks:
        raise ModelRegistryError(f"{content.path} holds no MLmodel file: it is not an MLflow model directory")
    prefix = marks[0][: -len("MLmodel")]  # the model's folder inside the artifact ("" at its top)
    folder = Path(tempfile.mkdtemp(prefix="pitstop-mlflow-"))
    try:
        for name, data in content.files.items():
            if prefix and not name.startswith(prefix):
                continue
            target = folder / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        model = mlflow_pyfunc.load_model(str(folder))
    except ModelRegistryError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ModelRegistryError(f"cannot load the MLflow model in {content.path}: {type(exc).__name__}: {exc}") from exc
    weakref.finalize(model, shutil.rmtree, str(folder), True)
    return model


_MLFLOW_DTYPES = {"long": "int64", "integer": "int32", "double": "float64", "float": "float32", "boolean": "bool",
                  "string": "object"}


def _mlflow_predict(model: Any) -> Callable[[Any], Any]:
    """``model.predict`` with input columns cast to the MLflow signature's types first.

    Serving hands over float64 blocks; MLflow's schema enforcement refuses a float column where the
    signature says ``long`` even when every value is whole, so whole-valued columns are cast here.
    """
    import pandas as pd

    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    wanted = {}
    if schema is not None and schema.has_input_names():
        for spec in schema.inputs:
            kind = getattr(getattr(spec, "type", None), "name", None)
            if kind in _MLFLOW_DTYPES:
                wanted[spec.name] = _MLFLOW_DTYPES[kind]

    def predict(frame: Any) -> Any:
        if isinstance(frame, pd.DataFrame) and wanted:
            casts = {c: t for c, t in wanted.items() if c in frame.columns and str(frame[c].dtype) != t}
            if casts:
                frame = frame.astype(casts)
        return model.predict(frame)

    return predict


_LOADERS: dict[str, Callable[[bytes, str], tuple[Any, Callable[[Any], Any] | None]]] = {
    "sklearn": _load_sklearn, "pyfunc": _load_pyfunc, "lightgbm": _load_lightgbm, "xgboost": _load_xgboost,
    "onnx": _load_onnx,
}
