"""Migration commands: ``pitstop import feast PATH``."""

from __future__ import annotations

from pathlib import Path

import click

from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx

DEFINITIONS_FILE = "feast_definitions.py"


@click.group(name="import")
def import_group() -> None:
    """Bring definitions from other tools into this repo."""


@import_group.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help=f"Overwrite an existing {DEFINITIONS_FILE}.")
@pass_ctx
def feast(ctx: Context, path: Path, force: bool) -> None:
    """Translate the Feast repository at PATH into pitstop definitions (written to this repo's
    feast_definitions.py; a pitstop.yaml with Feast's project name is written when there is none).

    Nothing is applied: review the file, then run `pitstop plan` and `pitstop apply`. Whatever has no
    pitstop equivalent is listed with its Feast file and line."""
    from pitstop.interop.feast_import import translate_feast_repo

    out = ctx.repo
    target = out / DEFINITIONS_FILE
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; pass --force to overwrite it")
    translation = translate_feast_repo(path, out)
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(translation.definitions)
    config = out / "pitstop.yaml"
    wrote_config = not config.exists()
    if wrote_config:
        project = translation.project or "imported"
        config.write_text(f"# written by `pitstop import feast {path}`\nproject: {project}\n"
                          "registry:\n  path: data/registry.db\nonline_store:\n  url: sqlite:///data/online.db\n")
    if ctx.json:
        render.emit_json({"definitions": str(target), "config_written": wrote_config, "project": translation.project,
                          "translated": translation.translated,
                          "skipped": [{"where": s.where, "what": s.what, "why": s.why} for s in translation.skipped]})
        return
    render.out.print(f"Wrote {target} ({len(translation.translated)} definitions translated)"
                     + (f" and {config}" if wrote_config else ""))
    if translation.skipped:
        render.table(f"left out ({len(translation.skipped)})", ["where", "what", "why"],
                     [[s.where, s.what, s.why] for s in translation.skipped])
    render.out.print("Next: review the file, then `pitstop plan` and `pitstop apply`.")
