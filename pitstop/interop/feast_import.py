"""Translate a Feast feature repository into pitstop definition files (``pitstop import feast PATH``).

The Feast files are read, not run: each module-level definition (``Entity``, ``FileSource``,
``PushSource``, ``RequestSource``, ``FeatureView``, ``@on_demand_feature_view`` functions,
``FeatureService``, ``Project``) is translated from its syntax tree, so neither Feast nor the
repo's own imports need to be installed. Anything without a pitstop equivalent (label views, stream
feature views, Map/Json/Struct/Array fields, logging configs, permissions, arguments that only tune
Feast) is left out and listed, with its file and line, in ``Translation.skipped``; a definition that
depends on a skipped one is skipped too. Relative source paths are rewritten relative to the output
folder, so the translated repo reads the same files.

Semantics to know after a migration (docs/interop.md): pitstop's training sets leave out feature rows
created after the entity row's time (no leakage); Feast's default join keeps them, so pass
``created_cutoff=False`` to reproduce a Feast training set exactly.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path

from pitstop.errors import DefinitionError

__all__ = ["Skipped", "Translation", "translate_feast_repo"]

_DTYPES = {"Float32": "Float32", "Float64": "Float64", "Int32": "Int32", "Int64": "Int64", "String": "String",
           "Bool": "Bool", "UnixTimestamp": "Timestamp"}
_UNSUPPORTED_DTYPES = {"Map", "Json", "Struct", "Array", "Bytes", "Set", "PdfBytes", "ImageBytes", "Decimal",
                       "Invalid", "UUID", "TimeUuid", "ValueType"}
_NOT_TRANSLATED = {
    "LabelView": "label views have no pitstop equivalent",
    "StreamFeatureView": "stream feature views with transformations have no pitstop equivalent "
                         "(a KafkaSource-fed FeatureView covers plain streams)",
    "BatchFeatureView": "batch feature views with transformations have no pitstop equivalent",
    "Permission": "Feast permissions: pitstop uses API keys and OIDC scopes (docs/security.md)",
    "SavedDataset": "saved datasets: pitstop records every training set (docs/lineage.md)",
    "ValidationReference": "validation references have no pitstop equivalent",
    "KafkaSource": "translate by hand: pitstop's KafkaSource takes topic= and batch_source=, the brokers come "
                   "from the kafka settings",
}
_SOURCE_KINDS = {"FileSource", "ParquetSource", "PushSource", "RequestSource"}
_IGNORED_ARGS = {"owner", "enable_validation", "version", "value_type", "file_format", "s3_endpoint_override",
                 "field_mapping", "date_partition_column", "timestamp_format", "mode_spec", "logging_config",
                 "write_to_online_store", "singleton", "offline", "entity_columns", "udf_string", "aggregations",
                 "environment", "mode"}


@dataclass(frozen=True)
class Skipped:
    """Something the translation left out: where (``file:line``), what, and why."""

    where: str
    what: str
    why: str


@dataclass
class Translation:
    """The translated repo: ``definitions`` (a Python file), the Feast project name, what was left out."""

    definitions: str
    project: str | None
    translated: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class _Skip(Exception):
    """This expression (and the definition holding it) cannot be translated."""


@dataclass
class _Symbol:
    kind: str
    var: str


class _Translator:
    def __init__(self, repo: Path, out: Path) -> None:
        self.repo = repo
        self.out = out
        self.symbols: dict[str, _Symbol] = {}
        self.constants: dict[str, str] = {}
        self.blocks: list[str] = []
        self.translated: list[str] = []
        self.skipped: list[Skipped] = []
        self.project: str | None = None
        self.file = ""
        self.source = ""
        self.inline = 0

    # --- expressions -----------------------------------------------------------------------

    def where(self, node: ast.AST) -> str:
        return f"{self.file}:{getattr(node, 'lineno', 0)}"

    def expr(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return repr(node.value)
        if isinstance(node, ast.List | ast.Tuple):
            return "[" + ", ".join(self.expr(e) for e in node.elts) + "]"
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise _Skip("a dict with ** unpacking")
            return "{" + ", ".join(f"{self.expr(k)}: {self.expr(v)}" for k, v in zip(node.keys, node.values, strict=True)
                                   if k is not None) + "}"
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return self.symbols[node.id].var
            if node.id in self.constants:
                return self.constants[node.id]
            if node.id in _DTYPES:
                return _DTYPES[node.id]
            raise _Skip(f"it refers to {node.id!r}, which was not translated")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in self.symbols:
            return f"{self.symbols[node.value.id].var}[{self.expr(node.slice)}]"
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name == "timedelta":
                args = [self.expr(a) for a in node.args] + [f"{k.arg}={self.expr(k.value)}" for k in node.keywords]
                return f"timedelta({', '.join(args)})"
            if name == "Field":
                return self.field(node)
            if name in ("FileSource", "ParquetSource"):  # an inline batch source
                return self.inline_source(node)
        raise _Skip(f"`{ast.get_source_segment(self.source, node) or type(node).__name__}` has no pitstop equivalent")

    def field(self, node: ast.Call) -> str:
        kwargs = _kwargs(node)
        name = _name_arg(node, kwargs)
        dtype = kwargs.get("dtype", node.args[1] if len(node.args) > 1 else None)
        if name is None or dtype is None:
            raise _Skip("a Field without a name or dtype")
        dtype_name = _call_name(dtype) if isinstance(dtype, ast.Call) else getattr(dtype, "id", None)
        if dtype_name not in _DTYPES:
            raise _Skip(f"field {ast.literal_eval(name)!r} has dtype {dtype_name}, which pitstop does not store")
        extra = f", description={self.expr(kwargs['description'])}" if "description" in kwargs else ""
        return f"Field({self.expr(name)}, {_DTYPES[dtype_name]}{extra})"

    def schema(self, node: ast.expr, owner: str) -> str:
        """A schema list, leaving out (and listing) the fields pitstop cannot store."""
        if not isinstance(node, ast.List):
            return self.expr(node)
        kept = []
        for element in node.elts:
            try:
                kept.append(self.expr(element))
            except _Skip as exc:
                self.skipped.append(Skipped(self.where(element), f"a field of {owner}", str(exc)))
        return "[" + ", ".join(kept) + "]"

    def path(self, node: ast.expr) -> str:
        raw = ast.literal_eval(self.expr(node))  # a literal, or a module constant holding one
        if not isinstance(raw, str):
            raise _Skip("a source path that is not text")
        if "://" in raw or os.path.isabs(raw):
            return repr(raw)
        return repr(os.path.relpath((self.repo / raw).resolve(), self.out.resolve()))

    def parquet_source(self, node: ast.Call, var: str) -> str:
        kwargs = _kwargs(node)
        if "path" not in kwargs:
            raise _Skip("a FileSource without a path")
        name = self.expr(kwargs["name"]) if "name" in kwargs else repr(var)
        args = [name, f"path={self.path(kwargs['path'])}"]
        for key in ("timestamp_field", "created_timestamp_column", "description", "tags"):
            value = kwargs.get(key)
            if value is not None and not (isinstance(value, ast.Constant) and value.value in ("", None)):
                args.append(f"{key}={self.expr(value)}")
        self.note_ignored(node, kwargs, {"name", "path", "timestamp_field", "created_timestamp_column",
                                         "description", "tags"}, f"source {name}")
        return f"ParquetSource({', '.join(args)})"

    def inline_source(self, node: ast.Call) -> str:
        self.inline += 1
        return self.parquet_source(node, f"source_{self.inline}")

    def optional(self, kwargs: dict[str, ast.expr], keys: tuple[str, ...]) -> list[str]:
        """``key=value`` for each of ``keys`` the call gives, translated."""
        return [f"{key}={self.expr(kwargs[key])}" for key in keys if key in kwargs]

    def note_ignored(self, node: ast.Call, kwargs: dict[str, ast.expr], used: set[str], owner: str) -> None:
        for key in kwargs:
            if key not in used:
                why = "only tunes Feast" if key in _IGNORED_ARGS else "has no pitstop equivalent"
                self.skipped.append(Skipped(self.where(kwargs[key]), f"argument {key}= of {owner}", why))

    # --- definitions -----------------------------------------------------------------------

    def definition(self, var: str, node: ast.Call) -> None:
        kind = _call_name(node)
        kwargs = _kwargs(node)
        label = f"{kind} {var}"
        if kind == "Project":
            name = _name_arg(node, kwargs)
            self.project = ast.literal_eval(name) if name is not None else None
            return
        if kind in _NOT_TRANSLATED:
            self.skipped.append(Skipped(self.where(node), label, _NOT_TRANSLATED[kind]))
            return
        builders = {"Entity": self.entity, "FileSource": self.parquet_source, "ParquetSource": self.parquet_source,
                    "PushSource": self.push_source, "RequestSource": self.request_source,
                    "FeatureView": self.feature_view, "FeatureService": self.feature_service}
        if kind not in builders:
            return  # not a definition (a helper object, a constant made by a call, ...)
        try:
            code = builders[kind](node, var)
        except _Skip as exc:
            self.skipped.append(Skipped(self.where(node), label, str(exc)))
            return
        except (ValueError, SyntaxError) as exc:  # literal_eval on something that is not a literal
            self.skipped.append(Skipped(self.where(node), label, f"an argument is not a literal: {exc}"))
            return
        self.symbols[var] = _Symbol(kind, var)
        self.blocks.append(f"{var} = {code}")
        self.translated.append(label)

    def entity(self, node: ast.Call, var: str) -> str:
        kwargs = _kwargs(node)
        name = _name_arg(node, kwargs)
        if name is None:
            raise _Skip("an Entity without a name")
        keys = self.expr(kwargs["join_keys"]) if "join_keys" in kwargs else f"[{self.expr(name)}]"
        args = [self.expr(name), f"join_keys={keys}", *self.optional(kwargs, ("description", "tags"))]
        self.note_ignored(node, kwargs, {"name", "join_keys", "description", "tags", "value_type"}, f"entity {var}")
        return f"Entity({', '.join(args)})"

    def push_source(self, node: ast.Call, var: str) -> str:
        kwargs = _kwargs(node)
        if "batch_source" not in kwargs:
            raise _Skip("a PushSource without a batch_source")
        name = self.expr(kwargs["name"]) if "name" in kwargs else repr(var)
        self.note_ignored(node, kwargs, {"name", "batch_source", "description", "tags"}, f"push source {name}")
        return f"PushSource({name}, batch_source={self.expr(kwargs['batch_source'])})"

    def request_source(self, node: ast.Call, var: str) -> str:
        kwargs = _kwargs(node)
        name = self.expr(kwargs["name"]) if "name" in kwargs else repr(var)
        if "schema" not in kwargs:
            raise _Skip("a RequestSource without a schema")
        return f"RequestSource({name}, schema={self.schema(kwargs['schema'], f'request source {name}')})"

    def feature_view(self, node: ast.Call, var: str) -> str:
        kwargs = _kwargs(node)
        name = _name_arg(node, kwargs)
        if name is None or "source" not in kwargs:
            raise _Skip("a FeatureView needs a name and a source")
        owner = f"feature view {self.expr(name)}"
        args = [self.expr(name), f"entities={self.expr(kwargs['entities']) if 'entities' in kwargs else '[]'}",
                f"schema={self.schema(kwargs['schema'], owner) if 'schema' in kwargs else '[]'}",
                f"source={self.expr(kwargs['source'])}"]
        ttl = kwargs.get("ttl")
        if ttl is not None and not _zero_timedelta(ttl):
            args.append(f"ttl={self.expr(ttl)}")
        args += self.optional(kwargs, ("online", "description", "tags"))
        self.note_ignored(node, kwargs, {"name", "entities", "schema", "source", "ttl", "online", "description",
                                         "tags"}, owner)
        return f"FeatureView({', '.join(args)})"

    def feature_service(self, node: ast.Call, var: str) -> str:
        kwargs = _kwargs(node)
        name = _name_arg(node, kwargs)
        if name is None or "features" not in kwargs:
            raise _Skip("a FeatureService needs a name and features")
        args = [self.expr(name), f"features={self.expr(kwargs['features'])}", *self.optional(kwargs, ("description", "tags"))]
        self.note_ignored(node, kwargs, {"name", "features", "description", "tags"},
                          f"feature service {self.expr(name)}")
        return f"FeatureService({', '.join(args)})"

    def on_demand(self, node: ast.FunctionDef) -> None:
        decorator = next(d for d in node.decorator_list if isinstance(d, ast.Call)
                         and _call_name(d) == "on_demand_feature_view")
        kwargs = _kwargs(decorator)
        label = f"on-demand feature view {node.name}"
        try:
            mode = ast.literal_eval(kwargs["mode"]) if "mode" in kwargs else "pandas"
            if mode not in ("pandas", "python"):
                raise _Skip(f"mode {mode!r}: pitstop runs pandas and python transformations")
            args = [f"sources={self.expr(kwargs['sources'])}", f"schema={self.schema(kwargs['schema'], label)}",
                    *self.optional(kwargs, ("name", "description", "tags"))]
            if mode == "python":
                args.append('mode="python"')
        except _Skip as exc:
            self.skipped.append(Skipped(self.where(node), label, str(exc)))
            return
        self.note_ignored(decorator, kwargs, {"sources", "schema", "name", "description", "tags", "mode"}, label)
        body = ast.get_source_segment(self.source, node) or ""
        first = body.find("def ")  # without the Feast decorator
        self.symbols[node.name] = _Symbol("OnDemandFeatureView", node.name)
        self.blocks.append(f"@on_demand_feature_view({', '.join(args)})\n{body[first:]}")
        self.translated.append(label)

    def module(self, path: Path) -> None:
        self.file = str(path.relative_to(self.repo))
        self.source = path.read_text()
        try:
            tree = ast.parse(self.source, filename=str(path))
        except SyntaxError as exc:
            raise DefinitionError(f"{self.file}:{exc.lineno}: cannot parse this Feast file: {exc.msg}") from exc
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                var = stmt.targets[0].id
                if isinstance(stmt.value, ast.Call) and _call_name(stmt.value) not in ("timedelta",):
                    self.definition(var, stmt.value)
                else:
                    try:
                        self.constants[var] = self.expr(stmt.value)
                    except _Skip:
                        pass
            elif isinstance(stmt, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and _call_name(d) == "on_demand_feature_view" for d in stmt.decorator_list):
                self.on_demand(stmt)


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _kwargs(node: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in node.keywords if k.arg is not None}


def _name_arg(node: ast.Call, kwargs: dict[str, ast.expr]) -> ast.expr | None:
    """The ``name`` a Feast constructor got, as a keyword or as its first positional argument."""
    return kwargs.get("name", node.args[0] if node.args else None)


def _zero_timedelta(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    return isinstance(node, ast.Call) and _call_name(node) == "timedelta" and all(
        isinstance(a, ast.Constant) and a.value == 0 for a in [*node.args, *(k.value for k in node.keywords)])


_HEADER = '''"""Translated from the Feast repository {repo} by `pitstop import feast`.

Review before `pitstop apply`: what could not be translated is listed by the command (and below).
pitstop's training sets leave out rows created after each entity row's time; Feast's default join
keeps them (pass created_cutoff=False to reproduce a Feast training set exactly).
"""

from datetime import timedelta

import pandas as pd

from pitstop import (Bool, Entity, FeatureService, FeatureView, Field, Float32, Float64, Int32, Int64, ParquetSource,
                     PushSource, RequestSource, String, Timestamp, on_demand_feature_view)
'''


def translate_feast_repo(repo: Path | str, out: Path | str) -> Translation:
    """Translate the Feast repository at ``repo`` into one pitstop definitions file meant for folder ``out``.

    Raises:
        DefinitionError: ``repo`` holds no Python file, or one cannot be parsed.
    """
    root = Path(repo).expanduser().resolve()
    files = sorted(p for p in root.rglob("*.py") if not any(part.startswith(".") or part == "__pycache__"
                                                            for part in p.relative_to(root).parts))
    if not files:
        raise DefinitionError(f"{root} holds no Python files: point at the Feast repository (the folder with "
                              "feature_store.yaml and the definition files)")
    translator = _Translator(root, Path(out).expanduser())
    for path in files:
        translator.module(path)
    text = _HEADER.format(repo=root)
    if translator.skipped:
        text += "\n# Left out:\n" + "".join(f"#   {s.where}: {s.what}: {s.why}\n" for s in translator.skipped)
    text += "\n\n" + "\n\n\n".join(translator.blocks) + "\n"
    project = translator.project or _yaml_project(root)
    return Translation(text, project, translator.translated, translator.skipped)


def _yaml_project(root: Path) -> str | None:
    config = root / "feature_store.yaml"
    if not config.exists():
        return None
    for line in config.read_text().splitlines():
        if line.startswith("project:"):
            return line.split(":", 1)[1].strip().strip("'\"") or None
    return None
