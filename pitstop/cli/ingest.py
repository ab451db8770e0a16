"""``pitstop ingest``: the long-running Kafka stream ingester."""

from __future__ import annotations

import click

from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx


@click.command()
@click.option("--views", "-v", "views", multiple=True,
              help="Only these stream views (repeatable, or comma-separated); default: every view fed by a KafkaSource.")
@click.option("--max-seconds", type=float, default=None, help="Stop after this long (default: run until SIGTERM).")
@pass_ctx
def ingest(ctx: Context, views: tuple[str, ...], max_seconds: float | None) -> None:
    """Consume the stream views' topics into the online and offline stores until SIGTERM.

    Run several processes with the same kafka.group_id to share the partitions.
    """
    from pitstop.ingestion import Ingester
    from pitstop.log import configure_logging

    names = [v.strip() for item in views for v in item.split(",") if v.strip()] or None
    with ctx.store() as store:
        ingester = Ingester(store, names)  # definition problems surface here, as one red line
        configure_logging(json=ctx.json)
        ingester.install_signal_handlers()
        stats = ingester.run(max_seconds=max_seconds)
    summary = {"events": stats.events, "dead_letters": stats.dead_letters, "commits": stats.commits,
               "offline_files": stats.offline_files, "stale": stats.stale}
    if ctx.json:
        render.emit_json(summary)
    else:
        render.table("ingested", list(summary), [list(summary.values())])
