"""Optional dependency groups: a feature whose extra is missing fails with one line naming it."""

from __future__ import annotations

from importlib.util import find_spec

from pitstop.errors import MissingExtraError

__all__ = ["require_extra"]


def require_extra(extra: str, feature: str, *modules: str) -> None:
    """Check that ``modules`` are installed (without importing them) before ``feature`` imports them.

    Raises:
        MissingExtraError: ``<feature> needs pitstop[<extra>]: pip install 'pitstop[<extra>]'``.
    """
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"{feature} needs the {extra!r} extra ({', '.join(missing)} not installed): "
                                f"pip install 'pitstop[{extra}]'")
