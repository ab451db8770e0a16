"""Feature references: ``"view:feature"`` in requests, ``view__feature`` as full output names."""

from __future__ import annotations

from typing import NamedTuple

from pitstop.errors import FeatureRefError


class FeatureRef(NamedTuple):
    """A parsed ``"view:feature"`` reference."""

    view: str
    feature: str

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        """Parse ``"view:feature"``; raises FeatureRefError naming the bad reference."""
        if not isinstance(text, str) or text.count(":") != 1:
            raise FeatureRefError(f"feature reference {text!r} must look like 'view:feature'")
        view, feature = text.split(":")
        if not view or not feature:
            raise FeatureRefError(f"feature reference {text!r} must look like 'view:feature'")
        return cls(view, feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"

    def output_name(self, full: bool) -> str:
        """Column name in results: ``feature`` or, with full names, ``view__feature``."""
        return f"{self.view}__{self.feature}" if full else self.feature
