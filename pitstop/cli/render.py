"""Everything the CLI prints: rich tables and progress bars, or JSON for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pitstop.registry.plan import Plan

# piped output (CI logs, files) gets wide tables instead of rich's 80-column default
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def emit_json(data: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(data, indent=2, default=str))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    out.print(t)


def plan(p: Plan, *, applied: bool) -> None:
    if p.is_empty:
        out.print("[green]Registry is up to date[/green]: nothing to change.")
        return
    colors = {"add": "green", "change": "yellow", "remove": "red"}
    signs = {"add": "+", "change": "~", "remove": "-"}
    for c in p.changes:
        out.print(f"[{colors[c.action]}]{signs[c.action]} {c.kind} {c.name}[/{colors[c.action]}]")
        for f in c.fields:
            out.print(f"    {f.path}: {f.old!r} -> {f.new!r}", highlight=False)
    counts = p.counts()
    verb = "Applied" if applied else "Plan"
    out.print(f"{verb}: {counts['add']} to add, {counts['change']} to change, {counts['remove']} to remove.")


def error(message: str) -> None:
    err.print(f"[bold red]Error:[/bold red] {message}", highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """Yields a ``progress(description, done, total)`` callback drawing a bar on stderr (or a no-op)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def update(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        yield update


@contextmanager
def rows_progress(enabled: bool) -> Iterator[Any]:
    """Yields ``progress(view, rows_so_far)`` drawing one bar per view with rows/s (or a no-op)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err, transient=False) as bar:
        tasks: dict[str, Any] = {}
        starts: dict[str, float] = {}

        def update(view: str, rows: int) -> None:
            if view not in tasks:
                tasks[view] = bar.add_task(view, total=None, rate="")
                starts[view] = time.perf_counter()
            elapsed = max(time.perf_counter() - starts[view], 1e-6)
            bar.update(tasks[view], completed=rows, rate=f"{rows / elapsed:,.0f} rows/s")

        yield update
