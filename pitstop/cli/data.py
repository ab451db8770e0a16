"""Data commands: training-set."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx
from pitstop.timeutil import parse_duration


@click.command(name="training-set")
@click.option("--entities", "entities",
              help="Entity rows: a Parquet file, or a SQL query over the sources (by source name).")
@click.option("--reproduce", "reproduce", metavar="MODEL",
              help="Rebuild the training set of a model version (NAME:VERSION or NAME@ALIAS) from its dataset record.")
@click.option("--service", help="Feature service whose features to join.")
@click.option("--features", "-f", multiple=True, help="'view:feature' to join (repeatable, or comma-separated).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the set to this Parquet file.")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option("--no-created-cutoff", is_flag=True, help="Also use rows created after each entity row's time (leaky).")
@click.option("--head", "head", type=int, default=5, show_default=True, help="Rows to show.")
@pass_ctx
def training_set(ctx: Context, entities: str | None, reproduce: str | None, service: str | None,
                 features: tuple[str, ...], out_path: Path | None, full_feature_names: bool, no_created_cutoff: bool,
                 head: int) -> None:
    """Build a point-in-time-correct training set (or rebuild a model's with --reproduce)."""
    refs = [f.strip() for item in features for f in item.split(",") if f.strip()] or None
    if reproduce is not None:
        if entities or refs or service:
            raise click.UsageError("--reproduce takes the entity rows and features from the model's record")
        _reproduce(ctx, reproduce, out_path, head)
        return
    if entities is None:
        raise click.UsageError("pass --entities (or --reproduce MODEL)")
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


def _reproduce(ctx: Context, model: str, out_path: Path | None, head: int) -> None:
    started = time.perf_counter()
    with ctx.store() as store, render.progress_bar(not ctx.json) as progress:
        job = store.training_set_of(model, progress=progress)
        table = job.to_arrow()
        dataset = job.dataset_id
        if out_path is not None:
            job.to_parquet(out_path)
    seconds = time.perf_counter() - started
    if ctx.json:
        render.emit_json({"model": model, "dataset_id": dataset, "rows": table.num_rows,
                          "columns": table.column_names, "seconds": round(seconds, 3),
                          "out": str(out_path) if out_path else None})
        return
    frame = table.slice(0, head).to_pandas()
    render.table(f"training set of {model} (dataset {dataset}): {table.num_rows} rows x {table.num_columns} columns "
                 f"in {seconds:.2f}s", list(frame.columns),
                 frame.astype(object).where(frame.notna(), None).values.tolist())
    if out_path is not None:
        render.out.print(f"Wrote {out_path}")


def _parse_time(value: str | None, name: str) -> datetime:
    from pitstop.timeutil import to_utc

    if value is None or value == "now":
        return datetime.now(UTC)
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time like 2026-01-01T00:00:00", param_hint=name) from exc


def _report(ctx: Context, outcomes: list) -> None:
    if ctx.json:
        render.emit_json([{"view": o.view, "start": o.start.isoformat(), "end": o.end.isoformat(), "rows": o.rows,
                           "stale": o.stale, "seconds": round(o.seconds, 3), "skipped": o.skipped,
                           "reason": o.reason, "refill": o.refill} for o in outcomes])
        return
    rows = [[o.view, o.start.isoformat(timespec="seconds"), o.end.isoformat(timespec="seconds"),
             "up to date" if o.skipped else f"{o.rows:,}", f"{o.stale:,}", f"{o.seconds:.2f}",
             f"{o.rows / o.seconds:,.0f}" if o.seconds > 0 else "", o.reason] for o in outcomes]
    render.table("materialized", ["view", "start", "end", "rows", "stale", "seconds", "rows/s", "why"], rows)


@click.command()
@click.argument("start")
@click.argument("end")
@click.option("--views", "-v", multiple=True, help="Only these views (repeatable).")
@pass_ctx
def materialize(ctx: Context, start: str, end: str, views: tuple[str, ...]) -> None:
    """Write the latest row per entity with START <= event time < END to the online store."""
    with ctx.store() as store, render.rows_progress(not ctx.json) as progress:
        outcomes = store.materialize(_parse_time(start, "START"), _parse_time(end, "END"), list(views) or None,
                                     progress=progress)
    _report(ctx, outcomes)


@click.command(name="materialize-incremental")
@click.argument("end", required=False)
@click.option("--views", "-v", multiple=True, help="Only these views (repeatable).")
@pass_ctx
def materialize_incremental(ctx: Context, end: str | None, views: tuple[str, ...]) -> None:
    """Materialize each view from its watermark up to END (default: now)."""
    with ctx.store() as store, render.rows_progress(not ctx.json) as progress:
        outcomes = store.materialize_incremental(_parse_time(end, "END"), list(views) or None, progress=progress)
    _report(ctx, outcomes)


@click.command()
@click.option("--cron", required=True, help="When to run, e.g. '*/15 * * * *' (UTC).")
@click.option("--views", "-v", multiple=True, help="Only these views (repeatable).")
@click.option("--max-runs", type=int, default=None, help="Exit after this many runs (default: run forever).")
@click.option("--retries", type=int, default=3, show_default=True, help="Retries of a failed run.")
@pass_ctx
def schedule(ctx: Context, cron: str, views: tuple[str, ...], max_runs: int | None, retries: int) -> None:
    """Run materialize-incremental on a cron schedule until SIGTERM (one run at a time across schedulers)."""
    from pitstop.log import configure_logging
    from pitstop.scheduler import Scheduler

    configure_logging(json=ctx.json)
    with ctx.store() as store:
        scheduler = Scheduler(cron, lambda: store.materialize_incremental(views=list(views) or None), store.registry,
                              max_retries=retries)
        scheduler.install_signal_handlers()
        scheduler.serve_forever(max_runs=max_runs)


@click.command()
@click.option("--source", "-s", "sources", multiple=True, help="Only this Kafka or Push source (repeatable).")
@click.option("--min-age", default="1h", show_default=True,
              help="Leave files modified more recently alone (e.g. 30m, 1h, 2d).")
@click.option("--dry-run", is_flag=True, help="Only report what would be merged.")
@pass_ctx
def compact(ctx: Context, sources: tuple[str, ...], min_age: str, dry_run: bool) -> None:
    """Merge the small Parquet files streaming and push appended to offline folders (one per directory)."""
    age = _parse_age(min_age)
    with ctx.store() as store, render.progress_bar(not ctx.json) as progress:
        outcomes = store.compact_offline(list(sources) or None, min_age=age, dry_run=dry_run, progress=progress)
    if ctx.json:
        render.emit_json([{"source": o.source, "folder": str(o.folder), "directories": o.directories,
                           "files_before": o.files_before, "files_after": o.files_after, "rows": o.rows,
                           "bytes_before": o.bytes_before, "bytes_after": o.bytes_after,
                           "seconds": round(o.seconds, 3), "skipped": o.skipped, "dry_run": dry_run} for o in outcomes])
        return
    rows = [[o.source, str(o.folder), f"{o.directories:,}", f"{o.files_before:,} -> {o.files_after:,}", f"{o.rows:,}",
             "" if dry_run else f"{o.bytes_before / 1e6:,.1f} -> {o.bytes_after / 1e6:,.1f}", f"{o.seconds:.2f}"]
            for o in outcomes]
    render.table("would compact (dry run)" if dry_run else "compacted",
                 ["source", "folder", "directories", "files", "rows", "MB", "seconds"], rows)
    for o in outcomes:
        for line in o.skipped:
            render.error(f"left in place: {line}")


def _parse_age(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--min-age") from None


@click.command(name="migrate-to-delta")
@click.argument("source")
@click.argument("path")
@pass_ctx
def migrate_to_delta(ctx: Context, source: str, path: str) -> None:
    """Copy SOURCE's Parquet append folder into a new Delta table at PATH (local or s3://)."""
    with ctx.store() as store:
        rows, files, target = store.migrate_to_delta(source, path)
        batch = store.definitions().sources[source].batch.name
    if ctx.json:
        render.emit_json({"source": source, "rows": rows, "files": files, "table": target})
        return
    render.out.print(f"Copied {rows:,} rows from {files:,} files into the Delta table {target}.", highlight=False)
    render.out.print(f'Now set batch_source=DeltaSource("{batch}", path="{path}") for {source!r}, run `pitstop apply`, '
                     "then delete the old folder.", highlight=False)

