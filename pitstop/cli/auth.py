"""API key commands: ``pitstop auth create-key | list | revoke``."""

from __future__ import annotations

import click

from pitstop.auth.principal import SCOPES
from pitstop.cli import render
from pitstop.cli.context import Context, pass_ctx


@click.group()
def auth() -> None:
    """Manage the API keys that `pitstop serve` accepts."""


@auth.command("create-key")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help=f"A scope the key grants (repeat): {', '.join(SCOPES)}, or push:<source>.")
@click.option("--quiet", "-q", is_flag=True, help="Print the secret alone (for scripts: KEY=$(pitstop auth ... -q)).")
@pass_ctx
def create_key(ctx: Context, name: str, scopes: tuple[str, ...], quiet: bool) -> None:
    """Create a key NAME and print its secret once (it is stored only as a hash)."""
    from pitstop.auth.keyring import ApiKeys

    with ctx.store() as store:
        created = ApiKeys(store.registry).create(name, list(scopes))
    record = created.record
    if quiet:
        click.echo(created.secret)
        return
    if ctx.json:
        render.emit_json({"name": record.name, "key_id": record.key_id, "scopes": list(record.scopes),
                          "secret": created.secret})
        return
    render.out.print(f"Created API key [bold]{record.name}[/bold] (id {record.key_id}) with scopes "
                     f"{', '.join(record.scopes)}.", highlight=False)
    render.out.print("Secret (shown once; store it now):", highlight=False)
    render.out.print(created.secret, highlight=False, soft_wrap=True)


@auth.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Also show revoked keys.")
@pass_ctx
def list_keys(ctx: Context, include_revoked: bool) -> None:
    """Keys with their scopes, created and last-used times (never secrets)."""
    from pitstop.auth.keyring import ApiKeys

    with ctx.store() as store:
        keys = ApiKeys(store.registry).list(include_revoked=include_revoked)
    rows = [[k.name, k.key_id, " ".join(k.scopes), _when(k.created_at), _when(k.last_used_at),
             _when(k.revoked_at) or ""] for k in keys]
    if ctx.json:
        render.emit_json([dict(zip(["name", "key_id", "scopes", "created", "last_used", "revoked"],
                                   [r[0], r[1], (r[2] or "").split(), *r[3:]], strict=True)) for r in rows])
        return
    render.table("API keys", ["name", "id", "scopes", "created (UTC)", "last used (UTC)", "revoked (UTC)"], rows)


@auth.command()
@click.argument("name")
@pass_ctx
def revoke(ctx: Context, name: str) -> None:
    """Revoke the key NAME (or id); serving workers refuse it within auth.key_refresh_seconds."""
    from pitstop.auth.keyring import ApiKeys

    with ctx.store() as store:
        count = ApiKeys(store.registry).revoke(name)
    if ctx.json:
        render.emit_json({"revoked": count, "name": name})
        return
    render.out.print(f"Revoked {count} key(s) named {name!r}.", highlight=False)


def _when(value: object) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None  # type: ignore[attr-defined]
