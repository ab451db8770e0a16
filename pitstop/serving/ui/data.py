"""What each UI page shows, read from the store: plain dicts and lists for the templates.

Every list a page shows is one page of it (``PAGE_SIZE`` rows): model versions come from the
registry with LIMIT/OFFSET; definitions (already in memory) are sliced before rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pitstop.definitions import FeatureView, KafkaSource, PushSource
from pitstop.errors import NotFoundError, PitstopError

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    """One page of a longer list: its rows, its number (from 1) and how many pages there are."""

    rows: list[Any]
    number: int
    pages: int
    total: int


def page_of(rows: list[Any], number: int) -> Page:
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    number = min(max(1, number), pages)
    return Page(rows[(number - 1) * PAGE_SIZE: number * PAGE_SIZE], number, pages, len(rows))


def _age(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


def overview(store: Any) -> dict[str, Any]:
    """Counts, recent applies, failing materializations, drifted features."""
    contents = store.definitions()
    models, model_count = store.models.summaries(0, 1)
    runs = store.registry.runs(200)
    latest: dict[str, Any] = {}
    for run in runs:  # newest first: the first seen per view is its latest
        latest.setdefault(run.view, run)
    failing = [r for r in latest.values() if r.status != "success"]
    drifted = []
    for result in store.monitor.latest_results():
        for feature in result.get("features", []):
            if feature.get("drifted"):
                drifted.append({"model": result["model"], "version": result["version"], "feature": feature["feature"],
                                "effect": feature.get("effect"), "at": result.get("at")})
    return {
        "counts": {"entities": len(contents.entities), "sources": len(contents.sources),
                   "feature views": len(contents.views), "on-demand views": len(contents.on_demand),
                   "feature services": len(contents.services), "models": model_count},
        "applies": store.registry.history(5),
        "failing": failing,
        "drifted": drifted,
        "project": store.settings.project,
    }


def views_page(store: Any, number: int, source: str | None = None) -> Page:
    contents = store.definitions()
    rows = [{"name": v.name, "kind": "feature view", "source": v.source.name, "online": v.online,
             "features": len(v.feature_names), "ttl": str(v.ttl) if v.ttl else "none"}
            for v in contents.views.values()]
    rows += [{"name": v.name, "kind": "on-demand", "source": ", ".join(sorted(n for n, _ in v.view_inputs())),
              "online": True, "features": len(v.feature_names), "ttl": ""} for v in contents.on_demand.values()]
    if source:
        rows = [r for r in rows if r["kind"] == "feature view" and r["source"] == source]
    return page_of(sorted(rows, key=lambda r: r["name"]), number)


def view_detail(store: Any, name: str, number: int) -> dict[str, Any]:
    contents = store.definitions()
    now = datetime.now(UTC)
    if name in contents.on_demand:
        odfv = contents.on_demand[name]
        return {"name": name, "kind": "on-demand feature view", "description": odfv.description,
                "fields": [(f.name, f.dtype.name) for f in odfv.schema_], "inputs": odfv.view_inputs(),
                "services": _services_using(contents, name), "runs": page_of([], 1)}
    view: FeatureView | None = contents.views.get(name)
    if view is None:
        raise NotFoundError(f"no feature view {name!r}")
    source = view.source
    states = store.registry.watermark_states()
    state = states.get(name)
    runs = [r for r in store.registry.runs(1000) if r.view == name]
    stream = None
    if isinstance(source, KafkaSource):
        stream = f"Kafka topic {source.topic} (pitstop ingest)"
    elif isinstance(source, PushSource):
        stream = f"push source {source.name} (POST /push/{source.name})"
    last_success = next((r for r in runs if r.status == "success"), None)
    return {
        "name": name, "kind": "feature view", "description": view.description, "entities": view.join_keys,
        "fields": [(f.name, f.dtype.name) for f in view.fields], "ttl": str(view.ttl) if view.ttl else "none",
        "online": view.online, "source": source.name, "source_kind": type(source).__name__,
        "batch_path": source.batch.path, "stream": stream, "tags": view.tags,
        "watermark": state.value if state is not None else None,
        "freshness": _age(state.value if state is not None else None, now),
        "last_run": last_success.finished_at if last_success else None,
        "services": _services_using(contents, name), "runs": page_of(runs, number),
    }


def stream_topic(store: Any, name: str) -> str | None:
    """The Kafka topic feeding view ``name``, if it is stream-fed."""
    view = store.definitions().views.get(name)
    return view.source.topic if view is not None and isinstance(view.source, KafkaSource) else None


def _services_using(contents: Any, view_name: str) -> list[str]:
    return sorted(s.name for s in contents.services.values()
                  if any(ref.split(":")[0] == view_name for ref in s.feature_refs))


def services_page(store: Any, number: int) -> Page:
    contents = store.definitions()
    rows = [{"name": s.name, "features": len(s.feature_refs), "views": len({r.split(':')[0] for r in s.feature_refs})}
            for s in contents.services.values()]
    return page_of(sorted(rows, key=lambda r: r["name"]), number)


def service_detail(store: Any, name: str) -> dict[str, Any]:
    service = store.definitions().service(name)
    models = sorted({mv.name for mv in store.models.list() if mv.feature_service == name})
    return {"name": name, "description": service.description, "features": service.feature_refs, "models": models}


def models_page(store: Any, number: int) -> Page:
    rows, total = store.models.summaries((max(1, number) - 1) * PAGE_SIZE, PAGE_SIZE)
    aliases: dict[str, list[str]] = {}
    for a in store.models.aliases():
        aliases.setdefault(a.name, []).append(f"{a.alias} → v{a.version}")
    listed = [{"name": n, "versions": c, "latest": v, "aliases": sorted(aliases.get(n, []))} for n, c, v in rows]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return Page(listed, min(max(1, number), pages), pages, total)


def model_detail(store: Any, name: str, number: int) -> dict[str, Any]:
    offset = (max(1, number) - 1) * PAGE_SIZE
    versions, total = store.models.page(name, offset, PAGE_SIZE)
    if total == 0:
        raise NotFoundError(f"no model {name!r}")
    pages = max(1, math.ceil(total / PAGE_SIZE))
    aliases = sorted(store.models.aliases(name), key=lambda a: a.alias)
    return {"name": name, "versions": Page(versions, min(max(1, number), pages), pages, total), "aliases": aliases}


def dataset(store: Any, dataset_id: str) -> dict[str, Any]:
    """A training set's record: definitions version, features, every file read, join options."""
    record = store.registry.dataset(dataset_id)
    if record is None:
        raise NotFoundError(f"no dataset {dataset_id!r}")
    files = [(source, f.get("ref"), f.get("size"), f.get("version")) for source, refs in sorted(record.sources.items())
             for f in refs]
    return {"record": record, "files": page_of(files, 1), "models": [
        mv for mv in store.models.list() if mv.dataset_id == dataset_id][:PAGE_SIZE]}


def monitoring(store: Any, name: str) -> dict[str, Any]:
    """Drift per feature over the kept runs, rows per run, the latest result, the log's drop counter."""
    history = store.monitor.result_history(name)
    features = sorted({f for run in history for f in run.get("features", {})})
    series = {f: [run["features"].get(f, {}).get("effect") for run in history] for f in features}
    drifted = {f: [bool(run["features"].get(f, {}).get("drifted")) for run in history] for f in features}
    times = [datetime.fromisoformat(run["at"]).timestamp() for run in history]
    latest = next((r for r in store.monitor.latest_results() if r.get("model") == name), None)
    try:
        production = store.models.get(name, alias="production")
    except PitstopError:
        production = None
    performance, performance_error = _performance(store, name)
    return {"name": name, "times": times, "series": series, "drifted": drifted,
            "rows": [run.get("rows", 0) for run in history], "latest": latest, "production": production,
            "dropped": _dropped_rows(), "performance": performance, "performance_error": performance_error,
            "labels_path": store.settings.monitoring.labels_path}


def _performance(store: Any, name: str) -> tuple[list[dict[str, Any]], str | None]:
    """Per version and day over the last 30 days, against ``monitoring.labels_path`` (when set)."""
    path = store.settings.monitoring.labels_path
    if not path:
        return [], None
    full = store.repo_path / path
    try:
        frame = store.monitor.performance(name, full, since="30d", window="1d")
    except PitstopError as exc:
        return [], str(exc)
    return frame.to_dict("records")[-PAGE_SIZE:], None


def _dropped_rows() -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("pitstop_prediction_log_dropped_total")
