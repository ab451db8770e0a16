"""``pitstop monitor``: drift, delayed-label performance and skew of served models; scheduled drift gauges."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx

_SINCE = click.option("--since", default="1h", show_default=True,
                      help="Start of the window: a duration before now (30m, 1h, 2d) or an ISO time.")
_UNTIL = click.option("--until", default=None, help="End of the window (default: now).")


@click.group()
def monitor() -> None:
    """Watch served models: drift against their training set, performance from delayed labels, skew."""


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


@monitor.command()
@click.argument("model")
@_SINCE
@_UNTIL
@click.option("--reference-since", default=None, help="Compare against the log from here instead of the training set.")
@click.option("--reference-until", default=None, help="End of that reference window (default: --since).")
@click.option("--feature", "-f", "features", multiple=True, help="Only this input feature (repeatable).")
@click.option("--correction", type=click.Choice(["bh", "bonferroni"]), default=None,
              help="p-value correction across features (default: monitoring.correction).")
@click.option("--alpha", type=float, default=None, help="Significance level (default: monitoring.alpha).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML report with a plot per feature.")
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 3 when anything drifted (for CI and cron).")
@pass_ctx
def drift(ctx: Context, model: str, since: str, until: str | None, reference_since: str | None,
          reference_until: str | None, features: tuple[str, ...], correction: Any, alpha: float | None,
          html_path: Path | None, fail_on_drift: bool) -> None:
    """Drift of MODEL's logged inputs (name, name:version or name@alias) against its training set."""
    with ctx.store() as store:
        report = store.monitor.drift(model, since=since, until=until, reference_since=reference_since,
                                     reference_until=reference_until, features=list(features) or None,
                                     alpha=alpha, correction=correction)
    if html_path is not None:
        from pitstop.monitoring.html_report import drift_html

        html_path.write_text(drift_html(report, f"Drift of {model} since {since}"))
    if ctx.json:
        render.emit_json(report.as_dict())
    else:
        rows = [[f.feature, f.kind, f.test, _fmt(f.statistic), _fmt(f.p_adjusted), _fmt(f.effect, ".3f"),
                 _fmt(f.psi, ".3f"), f"{f.null_share_reference:.1%} → {f.null_share_current:.1%}",
                 "[bold red]DRIFT[/bold red]" if f.drifted else "[green]ok[/green]"] for f in report.features]
        render.table(f"Drift of {model}: {report.current_rows:,} logged rows vs {report.reference_rows:,} reference rows",
                     ["feature", "kind", "test", "statistic", "p (corrected)", "effect", "PSI", "nulls", ""], rows)
        mv = report.multivariate
        if mv is not None:
            verdict = "[bold red]DRIFT[/bold red]" if mv.drifted else "[green]ok[/green]"
            render.out.print(f"Multivariate MMD over {len(mv.features)} numeric features: MMD² {mv.statistic:.4g}, "
                             f"p {mv.p_value:.3g} {verdict}")
        render.out.print(f"Flagged when p ({report.correction}) < {report.alpha} and effect ≥ "
                         f"{report.numeric_threshold} (numeric, Wasserstein/σ) or {report.categorical_threshold} "
                         "(categorical, Jensen-Shannon).", highlight=False)
        if html_path is not None:
            render.out.print(f"HTML report: {html_path}", highlight=False)
    if fail_on_drift and report.drifted:
        raise SystemExit(3)


@monitor.command()
@click.argument("model")
@click.option("--labels", "labels_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Parquet or CSV file of delayed labels: request_id, or entity keys + event_timestamp, and the label.")
@click.option("--window", default="1h", show_default=True, help="Bucket width of the report (e.g. 1h, 1d).")
@click.option("--since", default=None, help="Only predictions from here (a duration before now or an ISO time).")
@_UNTIL
@click.option("--label-column", default="label", show_default=True, help="The labels' outcome column.")
@click.option("--by", type=click.Choice(["id", "time"]), default=None,
              help="Join by request id or by the point-in-time rule (default: id when the labels have request_id).")
@click.option("--tolerance", default=None, help="With --by time: the oldest prediction a label may meet (e.g. 1d).")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(["auc", "accuracy", "log_loss", "rmse", "mae"]),
              help="Metric to compute (repeatable; default: by the labels' kind).")
@pass_ctx
def performance(ctx: Context, model: str, labels_path: Path, window: str, since: str | None, until: str | None,
                label_column: str, by: Any, tolerance: str | None, metrics: tuple[str, ...]) -> None:
    """MODEL's metric per version and window, from delayed labels joined to its logged predictions."""
    with ctx.store() as store:
        frame = store.monitor.performance(model, labels_path, since=since, until=until, window=window,
                                          label_column=label_column, by=by, tolerance=tolerance,
                                          metrics=list(metrics) or None)
    if ctx.json:
        render.emit_json(frame.to_dict(orient="records"))
        return
    names = [c for c in frame.columns if c not in ("version", "window_start", "rows")]
    rows = [[r["version"], r["window_start"], f"{r['rows']:,}", *(_fmt(r[n], ".4f") for n in names)]
            for r in frame.to_dict(orient="records")]
    render.table(f"Performance of {model} from delayed labels", ["version", "window", "labelled rows", *names], rows)


@monitor.command()
@click.argument("model")
@_SINCE
@_UNTIL
@click.option("--sample", default=1000, show_default=True, help="Logged rows to recompute offline.")
@pass_ctx
def skew(ctx: Context, model: str, since: str, until: str | None, sample: int) -> None:
    """How often MODEL's online inputs differ from the offline point-in-time join for the same rows."""
    with ctx.store() as store:
        frame = store.monitor.skew(model, since=since, until=until, sample=sample)
    if ctx.json:
        render.emit_json(frame.to_dict(orient="records"))
        return
    rows = [[r["feature"], f"{r['rows']:,}", f"{r['mismatched']:,}", f"{r['share']:.1%}", r["online_only"],
             r["offline_only"], r["values_differ"], r["example"]] for r in frame.to_dict(orient="records")]
    render.table(f"Training/serving skew of {model}", ["feature", "rows", "mismatched", "share", "online only",
                                                      "offline only", "values differ", "first example"], rows)


@monitor.command()
@click.option("--cron", default="*/10 * * * *", show_default=True, help="When to run (UTC cron).")
@click.option("--since", default="1h", show_default=True, help="Window of each run, ending at the run.")
@click.option("--reference-since", default=None,
              help="Compare with the log from this long before each run (e.g. 2h) instead of the training set.")
@click.option("--reference-until", default=None, help="End of that reference window (default: --since).")
@click.option("--model", "-m", "models", multiple=True, help="Only this model (default: every logged model).")
@click.option("--max-runs", type=int, default=None, help="Exit after this many runs (default: run forever).")
@click.option("--metrics-port", type=int, default=None, help="Prometheus port (default: monitoring.metrics_port; 0: off).")
@pass_ctx
def run(ctx: Context, cron: str, since: str, reference_since: str | None, reference_until: str | None,
        models: tuple[str, ...], max_runs: int | None, metrics_port: int | None) -> None:
    """Check drift of every served model on a schedule; export gauges and prune the log past its retention."""
    from prometheus_client import CollectorRegistry, start_http_server

    from pitstop.log import configure_logging, get_logger
    from pitstop.monitoring.gauges import DriftCollector
    from pitstop.scheduler import Scheduler

    configure_logging(json=ctx.json)
    log = get_logger("pitstop.monitor")
    with ctx.store() as store:
        settings = store.settings.monitoring
        port = settings.metrics_port if metrics_port is None else metrics_port
        if port:
            registry = CollectorRegistry()
            registry.register(DriftCollector(store.monitor.latest_results))
            start_http_server(port, addr=settings.metrics_host, registry=registry)
            log.info("drift gauges on http://%s:%d/metrics", settings.metrics_host, port)

        def job() -> dict[str, Any]:
            reports = store.monitor.run_once(list(models) or None, since=since, reference_since=reference_since,
                                             reference_until=reference_until)
            pruned = store.monitor.prune([m.split('@')[0].split(':')[0] for m in models] if models else None)
            for ref, report in reports.items():
                log.info("%s: %d rows, drifted: %s", ref, report.current_rows, ", ".join(report.drifted) or "nothing")
            return {"reports": reports, "pruned": pruned}

        scheduler = Scheduler(cron, job, store.registry, lock_name="monitor",
                              describe=lambda r: f"{len(r['reports'])} models checked, "
                                                 f"{sum(r['pruned'].values())} old log rows pruned")
        scheduler.install_signal_handlers()
        scheduler.run_once()  # a first result right away, then on the schedule
        if max_runs is None or scheduler.runs < max_runs:
            scheduler.serve_forever(max_runs=max_runs)
