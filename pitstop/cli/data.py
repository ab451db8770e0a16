"""Data commands: training-set."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pitstop.cli import render
from pitstop.cli.app import Context, pass_ctx


@click.command(name="training-set")
@click.option("--entities", "entities", required=True,
              help="Entity rows: a Parquet file, or a SQL query over the sources (by source name).")
@click.option("--service", help="Feature service whose features to join.")
@click.option("--features", "-f", multiple=True, help="'view:feature' to join (repeatable, or comma-separated).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the set to this Parquet file.")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option("--no-created-cutoff", is_flag=True, help="Also use rows created after each entity row's time (leaky).")
@click.option("--head", "head", type=int, default=5, show_default=True, help="Rows to show.")
@pass_ctx
def training_set(ctx: Context, entities: str, service: str | None, features: tuple[str, ...], out_path: Path | None,
                 full_feature_names: bool, no_created_cutoff: bool, head: int) -> None:
    """Build a point-in-time-correct training set."""
    refs = [f.strip() for item in features for f in item.split(",") if f.strip()] or None
    if (refs is None) == (service is None):
        raise click.UsageError("pass exactly one of --service or --features")
    if not ctx.json and Path(entities).suffix == ".parquet" and not Path(entities).is_absolute():
        entities = str(Path(entities).resolve())
    started = time.perf_counter()
    with ctx.store() as store, render.progress_bar(not ctx.json) as progress:
        job = store.get_historical_features(entities, refs, feature_service=service,
                                            full_feature_names=full_feature_names,
                                            created_cutoff=not no_created_cutoff, progress=progress)
        table = job.to_arrow()
        if out_path is not None:
            job.to_parquet(out_path)
    seconds = time.perf_counter() - started
    if ctx.json:
        render.emit_json({"rows": table.num_rows, "columns": table.column_names, "seconds": round(seconds, 3),
                          "out": str(out_path) if out_path else None,
                          "head": table.slice(0, head).to_pylist()})
        return
    frame = table.slice(0, head).to_pandas()
    render.table(f"training set: {table.num_rows} rows x {table.num_columns} columns in {seconds:.2f}s",
                 list(frame.columns), frame.astype(object).where(frame.notna(), None).values.tolist())
    if out_path is not None:
        render.out.print(f"Wrote {out_path}")
