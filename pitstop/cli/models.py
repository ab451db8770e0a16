"""Model commands: ``pitstop models register | list | promote | describe``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pitstop.artifacts.flavors import FLAVORS
from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx


def _metrics(values: tuple[str, ...]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            metrics[key] = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: use NAME=NUMBER, e.g. auc=0.91", param_hint="--metric") from None
    return metrics


def _defaults(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use FEATURE=VALUE, e.g. conv_rate=0.0", param_hint="--default")
        value: Any = raw
        for parse in (int, float):
            try:
                value = parse(raw)
                break
            except ValueError:
                continue
        out[key] = {"true": True, "false": False}.get(raw.lower(), value) if isinstance(value, str) else value
    return out


def _row(mv: Any) -> list[Any]:
    metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(mv.metrics.items()))
    return [mv.name, mv.version, mv.flavor, ", ".join(mv.aliases), mv.feature_service or "", metrics,
            mv.created_at.strftime("%Y-%m-%d %H:%M:%S")]


HEADERS = ["name", "version", "flavor", "aliases", "service", "metrics", "created (UTC)"]


@click.group()
def models() -> None:
    """Register, list, promote and describe model versions."""


@models.command()
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--flavor", type=click.Choice(FLAVORS), default=None, help="How the artifact is loaded (with PATH).")
@click.option("--from-mlflow", "mlflow_uri", default=None, metavar="URI",
              help="Import an MLflow model version instead of PATH: models:/NAME@ALIAS, models:/NAME/VERSION or "
                   "runs:/RUN/PATH (tracking server from MLFLOW_TRACKING_URI or --tracking-uri).")
@click.option("--tracking-uri", default=None, help="MLflow tracking server (default: MLFLOW_TRACKING_URI).")
@click.option("--service", required=True, help="The feature service the model was trained on.")
@click.option("--metric", "metric", multiple=True, metavar="NAME=VALUE", help="A metric; repeatable.")
@click.option("--alias", default=None, help="Point this alias (e.g. production) at the new version.")
@click.option("--description", default="", help="Free text stored with the version.")
@click.option("--default", "defaults", multiple=True, metavar="FEATURE=VALUE",
              help="Value /predict uses when FEATURE is missing or expired (else it answers 422); repeatable.")
@click.option("--predict-method", type=click.Choice(["predict", "predict_proba"]), default="predict",
              show_default=True, help="What /predict calls (predict_proba: the positive class's probability).")
@pass_ctx
def register(ctx: Context, name: str, path: Path | None, flavor: str | None, mlflow_uri: str | None,
             tracking_uri: str | None, service: str, metric: tuple[str, ...],
             alias: str | None, description: str, defaults: tuple[str, ...], predict_method: str) -> None:
    """Copy the artifact at PATH (or an MLflow model version) into the artifact store as the next version of NAME."""
    serving = {"defaults": _defaults(defaults), "predict_method": predict_method}
    if (path is None) == (mlflow_uri is None):
        raise click.UsageError("give PATH (with --flavor) or --from-mlflow URI, not both")
    if path is not None and flavor is None:
        raise click.UsageError("--flavor is required with PATH")
    with ctx.store() as store:
        if mlflow_uri is not None:
            from pitstop.interop.mlflow import register_from_mlflow

            mv = register_from_mlflow(store, name, mlflow_uri, service, alias=alias, tracking_uri=tracking_uri,
                                      description=description, serving=serving)
        else:
            assert flavor is not None
            mv = store.models.register(name, path, flavor, service, _metrics(metric), description=description,
                                       alias=alias, serving=serving)
    if ctx.json:
        render.emit_json(mv.model_dump(mode="json"))
    else:
        render.out.print(f"Registered [bold]{mv.name}[/bold] version {mv.version} (sha256 {mv.sha256[:12]})"
                         + (f", alias {alias}" if alias else ""))


@models.command(name="list")
@click.argument("name", required=False)
@pass_ctx
def list_models(ctx: Context, name: str | None) -> None:
    """List every registered model version (of NAME only, when given)."""
    with ctx.store() as store:
        versions = store.models.list(name)
    if ctx.json:
        render.emit_json([mv.model_dump(mode="json") for mv in versions])
        return
    render.table(f"model versions ({len(versions)})", HEADERS, [_row(mv) for mv in versions])


@models.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="production", show_default=True, help="The alias to move.")
@pass_ctx
def promote(ctx: Context, name: str, version: int, alias: str) -> None:
    """Point NAME@ALIAS at VERSION."""
    with ctx.store() as store:
        mv = store.models.set_alias(name, alias, version)
    if ctx.json:
        render.emit_json(mv.model_dump(mode="json"))
    else:
        render.out.print(f"{name}@{alias} -> version {version}")


@models.command()
@click.argument("name")
@click.option("--mlflow-alias", required=True, help="The MLflow alias to follow (e.g. champion).")
@click.option("--alias", default="production", show_default=True, help="The pitstop alias to keep on it.")
@click.option("--mlflow-model", default=None, help="The MLflow registered model (default: NAME).")
@click.option("--service", default=None,
              help="Feature service for imported versions (default: the latest pitstop version's).")
@click.option("--tracking-uri", default=None, help="MLflow tracking server (default: MLFLOW_TRACKING_URI).")
@click.option("--interval", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds between polls of the MLflow alias.")
@click.option("--once", is_flag=True, help="Poll once and exit (for cron or CI).")
@pass_ctx
def follow(ctx: Context, name: str, mlflow_alias: str, alias: str, mlflow_model: str | None, service: str | None,
           tracking_uri: str | None, interval: float, once: bool) -> None:
    """Keep NAME@ALIAS on the version MLflow's alias points at: each move there is imported and becomes a
    hot swap in `pitstop serve`. Runs until stopped (or one poll with --once)."""
    from pitstop.interop.mlflow import FollowStep, follow_alias

    def report(step: FollowStep) -> None:
        if step.moved or step.imported or once:
            what = "imported and moved" if step.imported else "moved" if step.moved else "already on"
            render.out.print(f"{name}@{alias} {what} version {step.pitstop_version} "
                             f"(MLflow {mlflow_model or name}@{mlflow_alias} = version {step.mlflow_version})")

    with ctx.store() as store:
        try:
            step = follow_alias(store, name, mlflow_alias, alias, service, mlflow_model=mlflow_model,
                                tracking_uri=tracking_uri, interval=interval, once=once, on_step=report)
        except KeyboardInterrupt:
            return
    if ctx.json and step is not None:
        render.emit_json({"mlflow_version": step.mlflow_version, "version": step.pitstop_version,
                          "moved": step.moved, "imported": step.imported})


@models.command()
@click.argument("ref")
@pass_ctx
def describe(ctx: Context, ref: str) -> None:
    """Show one version: REF is NAME (latest), NAME:VERSION or NAME@ALIAS."""
    with ctx.store() as store:
        mv = store.models.resolve(ref)
        dataset = store.registry.dataset(mv.dataset_id) if mv.dataset_id else None
    data = mv.model_dump(mode="json")
    lineage = None
    if dataset is not None:  # model version -> dataset -> definitions version -> source files and versions
        lineage = {"dataset_id": dataset.dataset_id, "definitions_version": dataset.definitions_version,
                   "features": dataset.features, "recorded_at": dataset.created_at.isoformat(),
                   "sources": dataset.sources}
    if ctx.json:
        render.emit_json({**data, "lineage": lineage})
        return
    rows = [[k, ", ".join(map(str, v)) if isinstance(v, list) else v] for k, v in data.items() if k != "metrics"]
    rows += [[f"metric {k}", f"{v:g}"] for k, v in sorted(mv.metrics.items())]
    if dataset is not None:
        rows.append(["trained on dataset", f"{dataset.dataset_id} (definitions version {dataset.definitions_version})"])
        for name, files in dataset.sources.items():
            size = sum(int(f["size"]) for f in files)
            rows.append([f"  source {name}", f"{len(files)} file(s), {size:,} bytes"])
    render.table(f"model {mv.ref}", ["attribute", "value"], rows)
