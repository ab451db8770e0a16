"""Turn a feature list or a feature service into per-view selections and output column names.

Shared by training sets and online reads, so both name and order columns the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pitstop.definitions import FeatureRef, FeatureService, FeatureView, OnDemandFeatureView
from pitstop.definitions.contents import RepoContents
from pitstop.errors import FeatureRefError, RetrievalError


@dataclass
class ViewSelection:
    """Features taken from one feature view, and the column name each gets in the output."""

    view: FeatureView
    features: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    """Features fetched only as on-demand inputs; dropped from the output."""


@dataclass
class OnDemandSelection:
    """Outputs requested from one on-demand view, with their output names."""

    view: OnDemandFeatureView
    features: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass
class ResolvedFeatures:
    """Everything a retrieval needs: which views, which features, and the output column order."""

    refs: list[FeatureRef]
    views: dict[str, ViewSelection]
    on_demand: dict[str, OnDemandSelection]
    output_names: list[str]
    full_names: bool
    engine_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """What an engine derived from this resolution once (e.g. the online read plan), by engine."""

    @cached_property
    def join_keys(self) -> list[str]:
        """Every join key any selected view (or on-demand input view) needs, in first-seen order."""
        keys: list[str] = []
        for sel in self.views.values():
            keys += [k for k in sel.view.join_keys if k not in keys]
        return keys

    def input_column(self, view: str, feature: str) -> str:
        """The output (or hidden) column holding ``view:feature``."""
        return self.views[view].aliases[feature]

    @cached_property
    def request_fields(self) -> list[str]:
        """Request-data fields the on-demand views need."""
        names: list[str] = []
        for sel in self.on_demand.values():
            names += [f.name for f in sel.view.request_fields if f.name not in names]
        return names


def resolve(
    contents: RepoContents,
    *,
    features: list[str] | None = None,
    feature_service: str | FeatureService | None = None,
    full_feature_names: bool = False,
) -> ResolvedFeatures:
    """Resolve the request into selections; exactly one of ``features`` / ``feature_service``.

    Raises:
        FeatureRefError: a reference is malformed or names an unknown view or feature.
        RetrievalError: both or neither of features/feature_service, or output names clash.
    """
    if (features is None) == (feature_service is None):
        raise RetrievalError("pass exactly one of `features` (a list of 'view:feature') or `feature_service`")
    if feature_service is not None:
        svc = contents.service(feature_service if isinstance(feature_service, str) else feature_service.name)
        raw = svc.feature_refs
    else:
        assert features is not None
        if isinstance(features, str) or not features:
            raise RetrievalError("`features` must be a non-empty list of 'view:feature' references")
        raw = list(features)
    refs = [FeatureRef.parse(r) for r in raw]
    dupes = {str(r) for r in refs if refs.count(r) > 1}
    if dupes:
        raise FeatureRefError(f"feature {sorted(dupes)[0]!r} is requested more than once")
    views: dict[str, ViewSelection] = {}
    odfvs: dict[str, OnDemandSelection] = {}
    output: list[str] = []
    for ref in refs:
        if ref.view not in contents.views and ref.view not in contents.on_demand:
            raise FeatureRefError(f"unknown feature view {ref.view!r} in {str(ref)!r}; run `pitstop list views`")
        view = contents.view(ref.view)
        if ref.feature not in view.feature_names:
            raise FeatureRefError(
                f"feature view {ref.view!r} has no feature {ref.feature!r} (in {str(ref)!r}); "
                f"its features: {', '.join(view.feature_names)}"
            )
        name = ref.output_name(full_feature_names)
        output.append(name)
        if isinstance(view, OnDemandFeatureView):
            sel = odfvs.setdefault(view.name, OnDemandSelection(view))
            sel.features.append(ref.feature)
            sel.aliases[ref.feature] = name
        else:
            vsel = views.setdefault(view.name, ViewSelection(view))
            vsel.features.append(ref.feature)
            vsel.aliases[ref.feature] = name
    clashes = sorted({n for n in output if output.count(n) > 1})
    if clashes:
        raise RetrievalError(
            f"output column {clashes[0]!r} would come from more than one view; "
            "pass full_feature_names=True to name columns 'view__feature'"
        )
    for osel in odfvs.values():
        for view_name, feats in osel.view.view_inputs():
            vsel = views.setdefault(view_name, ViewSelection(contents.views[view_name]))
            for feat in feats:
                if feat not in vsel.aliases:
                    vsel.features.append(feat)
                    vsel.aliases[feat] = f"__input__{view_name}__{feat}"
                    vsel.hidden.add(feat)
    return ResolvedFeatures(refs, views, odfvs, output, full_feature_names)
