"""``store.monitor``: drift, delayed-label performance and skew of served models, from the prediction log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pitstop.errors import NotFoundError, PitstopError
from pitstop.log import get_logger
from pitstop.monitoring.drift import Correction, DriftReport, drift_report
from pitstop.monitoring.log_reader import compact_log, log_columns, log_models, prune_log, read_log
from pitstop.monitoring.performance import JoinMode, LabelError, join_labels, metric_table
from pitstop.monitoring.prediction_log import TIME_COLUMN, log_location
from pitstop.monitoring.profile import ReferenceProfile, build_profile
from pitstop.monitoring.skew import compare_online_offline, sample_rows
from pitstop.timeutil import parse_duration, to_utc

__all__ = ["Monitor", "TimeArg"]

log = get_logger(__name__)

HISTORY_RUNS = 500
"""Drift runs kept per model for the UI's history chart (one JSON line each)."""

TimeArg = str | timedelta | datetime | None
"""A point in time: a datetime, or a duration before now (``"1h"``, ``timedelta(days=1)``)."""


def _when(value: TimeArg, now: datetime) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return None if value is None else to_utc(value)
    if isinstance(value, timedelta):
        return now - value
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        raise PitstopError(f"{value!r} is neither a duration (30m, 1h, 2d) nor an ISO time") from None


class Monitor:
    """Monitoring of one feature store's served models (``FeatureStore.monitor``)."""

    def __init__(self, store: Any) -> None:
        # a FeatureStore (untyped: monitoring sits below the store in the layers)
        self._store = store
        self.settings = store.settings.monitoring

    # --- where things live ------------------------------------------------------------------

    @property
    def _root(self) -> Path | str:
        return self._store.settings.offline_root

    def _profiles_dir(self) -> Path:
        root = self._root
        return (root if isinstance(root, Path) else self._store.repo_path) / ".pitstop" / "profiles"

    def _results_dir(self) -> Path | None:
        base = log_location(self.settings, self._root, "x")[:-2]
        return None if base.startswith("s3://") else Path(base) / ".drift"

    def _version(self, model: str) -> Any:
        """The ModelVersion named by ``name``, ``name:version`` or ``name@alias`` (a bare name: ``@production``)."""
        if ":" not in model and "@" not in model:
            aliases = {a.alias for a in self._store.models.aliases(model)}
            model = f"{model}@production" if "production" in aliases else model
        return self._store.models.resolve(model)

    # --- profiles ---------------------------------------------------------------------------

    def save_profile(self, version: Any, training_set: pa.Table) -> ReferenceProfile:
        """Profile ``training_set``'s input features of ``version`` and keep it with the version."""
        profile = build_profile(training_set, version.feature_columns,
                                sample_rows=self.settings.profile_sample_rows)
        target = self._profiles_dir() / version.name / f"{version.version}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(profile.to_bytes())
        tmp.replace(target)
        return profile

    def profile(self, model: str) -> ReferenceProfile:
        """The reference profile of a model version (made at registration, or now from its recorded training set).

        Raises:
            NotFoundError: the version has neither a profile nor a recorded training set.
        """
        version = self._version(model)
        path = self._profiles_dir() / version.name / f"{version.version}.parquet"
        if path.exists():
            return ReferenceProfile.from_bytes(path.read_bytes())
        if version.dataset_id is None:
            raise NotFoundError(f"model {version.ref} has no reference profile: it was registered without a training "
                                "set; register with training_set=..., or compare against another window "
                                "(--reference-since)")
        log.info("profiling the training set of %s (registered before profiles existed)", version.ref)
        table = self._store.training_set_of(version.ref).to_arrow()
        return self.save_profile(version, table)

    # --- the log ----------------------------------------------------------------------------

    def log(self, model: str, *, since: TimeArg = None, until: TimeArg = None, version: int | None = None,
            columns: list[str] | None = None) -> pa.Table:
        """Logged predictions of ``model`` (a name) between ``since`` and ``until``."""
        now = datetime.now(UTC)
        return read_log(self.settings, self._root, model, since=_when(since, now), until=_when(until, now),
                        version=version, columns=columns)

    def models(self) -> list[str]:
        """Models with a prediction log on this host."""
        return log_models(self.settings, self._root)

    # --- drift ------------------------------------------------------------------------------

    def drift(self, model: str, *, since: TimeArg = "1h", until: TimeArg = None,
              reference_since: TimeArg = None, reference_until: TimeArg = None,
              features: Sequence[str] | None = None, alpha: float | None = None,
              correction: Correction | None = None, multivariate: bool = True) -> DriftReport:
        """Drift of a model version's logged inputs in a window against its training set (or another window).

        Args:
            model: ``name`` (its ``production`` version), ``name:version`` or ``name@alias``.
            since: start of the window (a duration before now, or a datetime).
            until: end of the window (default: now).
            reference_since: compare against the logged window from here instead of the training set.
            reference_until: end of that reference window (default: ``since``).
            features: only these input features.
            alpha: significance level (default ``monitoring.alpha``).
            correction: ``bh`` or ``bonferroni`` (default ``monitoring.correction``).
            multivariate: also run the MMD test.

        Raises:
            NotFoundError: no log, no rows in the window, or no reference.
        """
        version = self._version(model)
        now = datetime.now(UTC)
        start, end = _when(since, now), _when(until, now)
        wanted = list(features) if features is not None else version.feature_columns
        unknown = sorted(set(wanted) - set(version.feature_columns))
        if unknown:
            raise NotFoundError(f"model {version.ref} has no input feature {unknown[0]!r} "
                                f"(its inputs: {', '.join(version.feature_columns)})")
        current = log_columns(self.settings, self._root, version.name, since=start, until=end,
                              version=version.version)
        if current.num_rows == 0:
            raise NotFoundError(f"model {version.ref} has no logged predictions between {start or 'the start'} and "
                                f"{end or 'now'}")
        if reference_since is not None:
            ref_start = _when(reference_since, now)
            ref_end = _when(reference_until, now) if reference_until is not None else start
            window = read_log(self.settings, self._root, version.name, since=ref_start, until=ref_end,
                              version=version.version, columns=wanted)
            if window.num_rows == 0:
                raise NotFoundError(f"model {version.ref} has no logged predictions in the reference window")
            profile = build_profile(window, wanted, sample_rows=self.settings.profile_sample_rows)
        else:
            profile = self.profile(version.ref)
        s = self.settings
        return drift_report(profile, current, features=wanted, alpha=alpha or s.alpha,
                            correction=correction or s.correction, numeric_threshold=s.numeric_threshold,
                            categorical_threshold=s.categorical_threshold, multivariate=multivariate)

    # --- performance ------------------------------------------------------------------------

    def performance(self, model: str, labels: pa.Table | pd.DataFrame | str | Path, *, since: TimeArg = None,
                    until: TimeArg = None, window: str | timedelta | None = "1h", label_column: str = "label",
                    by: JoinMode | None = None, tolerance: str | timedelta | None = None,
                    metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """A metric per version and window, from delayed labels joined to the logged predictions.

        Args:
            model: the model name (every version of it is reported).
            labels: a table, or the path of a Parquet or CSV file, with ``label_column`` and either
                ``request_id`` (joined by id) or the entity keys and ``event_timestamp`` (joined by
                the point-in-time rule: the latest prediction for those keys at or before that time).
            since, until: the logged predictions to consider.
            window: bucket width (``"1h"``); ``None`` for one bucket.
            label_column: the outcome column.
            by: force ``id`` or ``time`` joining.
            tolerance: with ``time``, the oldest prediction a label may meet.
            metrics: among auc, accuracy, log_loss, rmse, mae (default: by the labels' kind).
        """
        name = model.split("@")[0].split(":")[0]
        now = datetime.now(UTC)
        table = _labels_table(labels)
        logged = read_log(self.settings, self._root, name, since=_when(since, now), until=_when(until, now))
        keys = self._keys(self._version(model).signature)
        if "event_timestamp" in table.column_names:
            table = table.set_column(table.column_names.index("event_timestamp"), "event_timestamp",
                                     _as_utc(table.column("event_timestamp")))
        joined = join_labels(logged, table, keys=keys, label_column=label_column, mode=by,
                             tolerance=parse_duration(tolerance) if isinstance(tolerance, str) else tolerance)
        step = parse_duration(window) if isinstance(window, str) else window
        return metric_table(joined, window=step, metrics=metrics)

    def _keys(self, signature: list[str]) -> list[str]:
        return list(self._store.resolve_features(list(signature)).join_keys) if signature else []

    # --- skew -------------------------------------------------------------------------------

    def skew(self, model: str, *, since: TimeArg = "1h", until: TimeArg = None, sample: int = 1_000,
             seed: int = 0) -> pd.DataFrame:
        """Per input feature, how often the online value served differs from the offline point-in-time join.

        Raises:
            NotFoundError: no logged predictions in the window.
        """
        version = self._version(model)
        now = datetime.now(UTC)
        logged = read_log(self.settings, self._root, version.name, since=_when(since, now), until=_when(until, now),
                          version=version.version)
        if logged.num_rows == 0:
            raise NotFoundError(f"model {version.ref} has no logged predictions in the window")
        rows = sample_rows(logged, sample, seed).to_pandas()
        resolved = self._store.resolve_features(list(version.signature))
        keys = list(resolved.join_keys)
        request = [f for f in resolved.request_fields if f in rows.columns]
        entity_df = rows[[*keys, *request, TIME_COLUMN]].reset_index(drop=True)
        offline = self._store.get_historical_features(entity_df, features=list(version.signature)).to_pandas()
        online = rows.reset_index(drop=True)
        return compare_online_offline(online, offline, version.feature_columns, keys)

    # --- scheduled runs ---------------------------------------------------------------------

    def run_once(self, models: Iterable[str] | None = None, *, since: TimeArg = "1h",
                 reference_since: TimeArg = None, reference_until: TimeArg = None) -> dict[str, DriftReport]:
        """Drift of every logged model's production version (or of ``models``) over the window, against the
        training set or the reference window; the results are kept for ``pitstop serve``'s /metrics.
        Models without rows or a reference are skipped (logged)."""
        reports: dict[str, DriftReport] = {}
        for model in list(models) if models is not None else self.models():
            try:
                version = self._version(model)
                report = self.drift(version.ref, since=since, reference_since=reference_since,
                                    reference_until=reference_until)
            except PitstopError as exc:
                log.warning("monitor: %s skipped: %s", model, exc)
                continue
            reports[version.ref] = report
            self._keep_result(version.name, version.version, report)
        return reports

    def _keep_result(self, name: str, version: int, report: DriftReport) -> None:
        folder = self._results_dir()
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"model": name, "version": version, "at": datetime.now(UTC).isoformat(), **report.as_dict()}
        tmp = folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(payload, default=str))
        tmp.replace(folder / f"{name}.json")
        # a compact line per run for the UI's drift-over-time chart, bounded to the last HISTORY_RUNS runs
        line = {"at": payload["at"], "version": version, "rows": report.current_rows,
                "features": {f.feature: {"effect": f.effect, "drifted": f.drifted} for f in report.features}}
        history = folder / f"{name}.history.jsonl"
        kept = history.read_text().splitlines()[-(HISTORY_RUNS - 1):] if history.exists() else []
        tmp = folder / f".{name}.history.tmp"
        tmp.write_text("\n".join([*kept, json.dumps(line, default=str)]) + "\n")
        tmp.replace(history)

    def result_history(self, model: str, limit: int = HISTORY_RUNS) -> list[dict[str, Any]]:
        """The last ``limit`` drift runs of ``model`` kept by ``run_once``, oldest first (per feature: effect, drifted)."""
        folder = self._results_dir()
        path = folder / f"{model}.history.jsonl" if folder is not None else None
        if path is None or not path.exists():
            return []
        out = []
        for text in path.read_text().splitlines()[-limit:]:
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
        return out

    def latest_results(self) -> list[dict[str, Any]]:
        """The last ``run_once`` result of every model (for gauges)."""
        folder = self._results_dir()
        if folder is None or not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def prune(self, models: Iterable[str] | None = None, *, now: datetime | None = None) -> dict[str, int]:
        """Delete logged rows older than ``monitoring.log_retention_days``, then merge the log's small files and
        vacuum those unused for ``offline_store.delta_retention_hours``; rows deleted per model."""
        days = self.settings.log_retention_days
        now = now or datetime.now(UTC)
        deleted = {}
        for m in list(models) if models is not None else self.models():
            if days is not None:
                deleted[m] = prune_log(self.settings, self._root, m, now=now, retention=timedelta(days=days))
            compact_log(self.settings, self._root, m,
                        retention_hours=self._store.settings.offline_store.delta_retention_hours)
        return deleted


def _labels_table(labels: pa.Table | pd.DataFrame | str | Path) -> pa.Table:
    if isinstance(labels, pa.Table):
        return labels
    if isinstance(labels, pd.DataFrame):
        return pa.Table.from_pandas(labels, preserve_index=False)
    path = Path(labels).expanduser()
    if not path.exists():
        raise LabelError(f"labels file {path} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(path)
        import pyarrow.parquet as pq

        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LabelError(f"cannot read labels file {path}: {exc}") from exc


def _as_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_timestamp(kind):
        return column.cast(pa.timestamp("us", tz=kind.tz or "UTC")) if kind.tz else \
            column.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):  # ISO text such as a CSV holds
        try:
            return column.cast(pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid as exc:
            raise LabelError(f"labels: event_timestamp is not ISO time text: {exc}") from exc
    raise LabelError(f"labels: event_timestamp must be a timestamp or ISO text, not {kind}")

