"""The ``pitstop`` command: a root group with the options every command shares, and the error edge."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pitstop.cli.context import Context
from pitstop.errors import PitstopError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-r", "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              envvar="PITSTOP_REPO", show_default=True, help="Feature repo folder (holds pitstop.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.version_option(package_name="pitstop")
@click.pass_context
def cli(ctx: click.Context, repo: Path, as_json: bool, debug: bool) -> None:
    """pitstop: feature store and online model serving."""
    ctx.obj = Context(repo=repo, json=as_json, debug=debug)


def _register() -> None:
    from pitstop.cli import data, models, repo, serve

    for command in (repo.init, repo.plan, repo.apply, repo.list_objects, repo.describe, data.training_set,
                    data.materialize, data.materialize_incremental, data.schedule, data.compact, data.migrate_to_delta, models.models, serve.serve,
                    serve.ui):
        cli.add_command(command)
    from pitstop.cli import auth, ingest, interop, monitor

    cli.add_command(interop.import_group)
    cli.add_command(ingest.ingest)
    cli.add_command(auth.auth)
    cli.add_command(monitor.monitor)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one red line and exit 1 on errors (traceback with --debug)."""
    from pitstop.cli import render

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="pitstop", standalone_mode=False)
    except click.exceptions.Abort:
        render.error("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PitstopError as exc:
        if debug:
            raise
        render.error(str(exc))
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        render.error(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)")
        sys.exit(1)
