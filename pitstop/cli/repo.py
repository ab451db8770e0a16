"""Repo commands: init, plan, apply, list, describe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx
from pitstop.registry.serde import to_spec

LIST_KINDS = {"entities": "entity", "views": "feature view", "services": "feature service", "sources": "source"}


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--no-data", is_flag=True, help="Do not generate the sample data.")
def init(directory: Path, no_data: bool) -> None:
    """Create a feature repo in DIRECTORY from the example: pitstop.yaml, definitions, sample data."""
    if directory.exists() and any(directory.iterdir()):
        raise click.ClickException(f"{directory} exists and is not empty; choose a new folder")
    template = resources.files("pitstop") / "templates" / "feature_repo"
    with resources.as_file(template) as src:
        shutil.copytree(src, directory, ignore=shutil.ignore_patterns("data", "__pycache__", "*.pyc"),
                        dirs_exist_ok=True)
    if not no_data:
        subprocess.run([sys.executable, str(directory / "generate_data.py")], check=True, stdout=subprocess.DEVNULL)
    render.out.print(f"Created feature repo [bold]{directory}[/bold]. Next:\n"
                     f"  cd {directory} && pitstop plan && pitstop apply\n"
                     "  pitstop training-set --entities data/entity_rows.parquet --service driver_activity --out train.parquet")


@click.command()
@pass_ctx
def plan(ctx: Context) -> None:
    """Show what `apply` would change in the registry; changes nothing."""
    with ctx.store() as store:
        p = store.plan()
    if ctx.json:
        render.emit_json(p.to_dict())
    else:
        render.plan(p, applied=False)


@click.command()
@pass_ctx
def apply(ctx: Context) -> None:
    """Validate the definitions and register them (one transaction)."""
    with ctx.store() as store:
        p = store.apply()
        version = store.registry.version()
    if ctx.json:
        render.emit_json({**p.to_dict(), "version": version})
    else:
        render.plan(p, applied=True)


def _summary(kind: str, obj: Any) -> list[Any]:
    spec = to_spec(obj)
    if kind == "entity":
        return [obj.name, ", ".join(obj.join_keys), obj.description]
    if kind == "feature view":
        ttl = spec.get("ttl_seconds")
        return [obj.name, ", ".join(spec["entities"]), ", ".join(obj.feature_names), obj.source.name,
                "none" if ttl is None else f"{ttl:g}s", obj.online]
    if kind == "feature service":
        return [obj.name, len(obj.feature_refs), ", ".join(obj.feature_refs)]
    return [obj.name, spec["type"], spec.get("path") or spec.get("topic") or spec.get("batch_source") or ""]


HEADERS = {
    "entity": ["name", "join keys", "description"],
    "feature view": ["name", "entities", "features", "source", "ttl", "online"],
    "feature service": ["name", "#", "features"],
    "source": ["name", "type", "where"],
}


@click.command(name="list")
@click.argument("what", type=click.Choice(sorted(LIST_KINDS)))
@pass_ctx
def list_objects(ctx: Context, what: str) -> None:
    """List registered entities, views, services or sources."""
    kind = LIST_KINDS[what]
    with ctx.store() as store:
        contents = store.definitions()
        table = dict(contents.by_kind()[kind])
        if kind == "feature view":
            table.update(contents.on_demand)
    if ctx.json:
        render.emit_json([{k: v for k, v in to_spec(o).items() if k != "udf_pickle"} for o in table.values()])
        return
    rows = []
    for name in sorted(table):
        obj = table[name]
        if obj.kind == "on-demand feature view":
            rows.append([name, "(on demand)", ", ".join(obj.feature_names), "request + features", "", False])
        else:
            rows.append(_summary(kind, obj))
    render.table(f"{what} ({len(rows)})", HEADERS[kind], rows)


@click.command()
@click.argument("name")
@pass_ctx
def describe(ctx: Context, name: str) -> None:
    """Show everything registered about NAME (any kind)."""
    with ctx.store() as store:
        obj = store.definitions().find(name)
    spec = {k: v for k, v in to_spec(obj).items() if k != "udf_pickle"}
    if ctx.json:
        render.emit_json({"kind": obj.kind, **spec})
        return
    rows = [[k, v] for k, v in spec.items() if k not in ("schema", "udf_source")]
    if "schema" in spec:
        rows.append(["schema", "; ".join(f"{f['name']}: {f['dtype']}" for f in spec["schema"])])
    render.table(f"{obj.kind} {name}", ["attribute", "value"], rows)
    if spec.get("udf_source"):
        render.out.print(spec["udf_source"], highlight=False)
