"""``pitstop serve``: the HTTP scoring service."""

from __future__ import annotations

import click

from pitstop.cli.context import Context, pass_ctx


@click.command()
@click.option("--bind", "-b", help="host:port to listen on [default: serving.bind, 127.0.0.1:8000].")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes [default: serving.workers, 2].")
@click.option("--timeout", type=click.IntRange(min=1), help="Seconds before a silent worker is restarted.")
@click.option("--graceful-timeout", type=click.IntRange(min=0), help="Seconds to finish in-flight requests on SIGTERM.")
@click.option("--max-requests", type=click.IntRange(min=0),
              help="Recycle a worker after this many requests (0: never, the default).")
@click.option("--access-log", is_flag=True, help="Log every request (costs throughput).")
@click.option("--dev", is_flag=True, help="One uvicorn process instead of gunicorn, for development.")
@click.option("--no-auth", is_flag=True,
              help="Answer every route without credentials (loopback binds only; logs a warning).")
@click.option("--certfile", type=click.Path(dir_okay=False), help="PEM certificate: serve HTTPS [serving.certfile].")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="PEM private key of --certfile [serving.keyfile].")
@pass_ctx
def serve(ctx: Context, bind: str | None, workers: int | None, timeout: int | None, graceful_timeout: int | None,
          max_requests: int | None, access_log: bool, dev: bool, no_auth: bool, certfile: str | None,
          keyfile: str | None) -> None:
    """Serve /features, /predict, /push and /models over HTTP (OpenAPI docs at /docs).

    Every route but /health and /ready needs `Authorization: Bearer <key or token>`: create keys
    with `pitstop auth create-key`, or configure an OIDC issuer (auth.* settings)."""
    import os

    from pitstop.errors import ConfigError
    from pitstop.extras import require_extra

    require_extra("serve", "pitstop serve", "fastapi", "uvicorn", "gunicorn", "uvicorn_worker", "orjson", "jwt")
    from pitstop.serving.server import ServeOptions, check_auth_bind, check_tls_files, run_dev, run_gunicorn
    from pitstop.settings import load_settings

    if no_auth:
        os.environ["PITSTOP_AUTH_ENABLED"] = "false"  # the workers read their settings from the environment too
    if certfile or keyfile:
        if not (certfile and keyfile):
            raise ConfigError("--certfile and --keyfile go together")
        os.environ["PITSTOP_SERVING_CERTFILE"], os.environ["PITSTOP_SERVING_KEYFILE"] = certfile, keyfile
    settings = load_settings(ctx.repo)
    conf = settings.serving
    check_auth_bind(bind or conf.bind, settings.auth.enabled)
    check_tls_files(conf.certfile, conf.keyfile)
    options = ServeOptions(
        repo=ctx.repo, bind=bind or conf.bind, workers=workers or conf.workers,
        timeout=timeout or conf.timeout,
        graceful_timeout=conf.graceful_timeout if graceful_timeout is None else graceful_timeout,
        keepalive=conf.keepalive, max_requests=conf.max_requests if max_requests is None else max_requests,
        access_log=access_log, client_timeout=conf.client_timeout_seconds, max_header_bytes=conf.max_header_bytes,
        reuse_port=conf.reuse_port, certfile=conf.certfile, keyfile=conf.keyfile,
    )
    if dev:
        run_dev(options)
    else:
        run_gunicorn(options)


@click.command()
@click.option("--bind", "-b", help="host:port to listen on [default: serving.bind, 127.0.0.1:8000].")
@click.option("--no-auth", is_flag=True, help="No sign-in (loopback binds only; logs a warning).")
@click.option("--certfile", type=click.Path(dir_okay=False), help="PEM certificate: serve HTTPS [serving.certfile].")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="PEM private key of --certfile [serving.keyfile].")
@click.pass_context
def ui(click_ctx: click.Context, bind: str | None, no_auth: bool, certfile: str | None, keyfile: str | None) -> None:
    """Serve the web UI at /ui (one worker: browsing, not scoring traffic); the same app as `pitstop serve`,
    so sign in with the same keys or tokens (docs/ui.md)."""
    ctx: Context = click_ctx.obj
    from pitstop.settings import load_settings

    conf = load_settings(ctx.repo).serving
    host_port = bind or conf.bind
    scheme = "https" if (certfile or conf.certfile) else "http"
    click.echo(f"web UI: {scheme}://{host_port}/ui", err=True)
    click_ctx.invoke(serve, bind=host_port, workers=1, timeout=None, graceful_timeout=None, max_requests=None,
                     access_log=False, dev=False, no_auth=no_auth, certfile=certfile, keyfile=keyfile)
