"""``pitstop serve``: the HTTP scoring service."""

from __future__ import annotations

import click

from pitstop.cli.app import Context, pass_ctx


@click.command()
@click.option("--bind", "-b", help="host:port to listen on [default: serving.bind, 127.0.0.1:8000].")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes [default: serving.workers, 2].")
@click.option("--timeout", type=click.IntRange(min=1), help="Seconds before a silent worker is restarted.")
@click.option("--graceful-timeout", type=click.IntRange(min=0), help="Seconds to finish in-flight requests on SIGTERM.")
@click.option("--max-requests", type=click.IntRange(min=0),
              help="Recycle a worker after this many requests (0: never, the default).")
@click.option("--access-log", is_flag=True, help="Log every request (costs throughput).")
@click.option("--dev", is_flag=True, help="One uvicorn process instead of gunicorn, for development.")
@pass_ctx
def serve(ctx: Context, bind: str | None, workers: int | None, timeout: int | None, graceful_timeout: int | None,
          max_requests: int | None, access_log: bool, dev: bool) -> None:
    """Serve /features, /predict, /push and /models over HTTP (OpenAPI docs at /docs)."""
    from pitstop.serving.server import ServeOptions, run_dev, run_gunicorn
    from pitstop.settings import load_settings

    conf = load_settings(ctx.repo).serving
    options = ServeOptions(
        repo=ctx.repo, bind=bind or conf.bind, workers=workers or conf.workers,
        timeout=timeout or conf.timeout,
        graceful_timeout=conf.graceful_timeout if graceful_timeout is None else graceful_timeout,
        keepalive=conf.keepalive, max_requests=conf.max_requests if max_requests is None else max_requests,
        access_log=access_log, client_timeout=conf.client_timeout_seconds, max_header_bytes=conf.max_header_bytes,
        reuse_port=conf.reuse_port,
    )
    if dev:
        run_dev(options)
    else:
        run_gunicorn(options)
