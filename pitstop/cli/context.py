"""What every command receives: the options of the root group (repo, --json, --debug)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

__all__ = ["Context", "pass_ctx"]


@dataclass
class Context:
    """Options shared by every command."""

    repo: Path
    json: bool
    debug: bool

    def store(self) -> Any:
        """The feature store of ``repo`` (opened on demand: most commands need it, ``--help`` does not)."""
        from pitstop.store import FeatureStore

        return FeatureStore(self.repo)


pass_ctx = click.make_pass_decorator(Context)
