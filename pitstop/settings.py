"""One settings object for a feature repo: defaults < ``pitstop.yaml`` < ``PITSTOP_<SECTION>_<KEY>``.

Relative paths in the settings are resolved against the repo directory (the folder holding
``pitstop.yaml``), so a repo works from any current directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pitstop.errors import ConfigError

__all__ = ["CONFIG_FILE", "Settings", "load_settings"]

CONFIG_FILE = "pitstop.yaml"
ENV_PREFIX = "PITSTOP_"


def _json_object(value: Any, setting: str) -> Any:
    """An environment variable's text as the JSON object it holds (empty text: ``{}``); other values as they are."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{setting} must be a JSON object: {exc}") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistrySettings(_Section):
    """Where definitions, watermarks and model versions are kept."""

    path: str = "data/registry.db"
    """A SQLite file (relative to the repo), or ``postgresql://user@host:5432/db`` for a registry
    shared by several hosts (see ``pitstop.registry.factory``)."""
    allow_pickle: bool = True
    """Whether this process may run pickled code from the registry: on-demand feature functions and
    ``sklearn``/``pyfunc`` model artifacts. With ``false`` those on-demand views answer an error and
    those models refuse to load, while everything else (lightgbm, xgboost, onnx models, plain
    feature views) keeps working. See docs/security.md."""


class SparkSettings(_Section):
    """The Spark offline engine (``offline_store.engine: spark``)."""

    master: str = "local[2]"
    """Where Spark runs: ``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; ignored when a
    SparkSession is already active in the process (it is used as it is)."""
    app_name: str = "pitstop"
    conf: dict[str, str] = Field(default_factory=dict)
    """Spark settings, e.g. ``{"spark.executor.memory": "8g"}`` (the session time zone is always UTC)."""
    staging_dir: str | None = None
    """Where a training set's entity rows (for Spark to read) and materialization's latest rows (for the
    driver to read back) are staged as Parquet: on a cluster, a folder the driver and every executor
    can read (a shared file system); default: the system temp folder, which suits ``local[N]``."""


class OfflineStoreSettings(_Section):
    """The offline engine: DuckDB (embedded, the default) or Spark."""

    engine: Literal["duckdb", "spark"] = "duckdb"
    """Which engine builds training sets and reads the latest rows for materialization; ``spark``
    needs ``pip install 'pitstop[spark]'`` and a Java runtime (docs/offline-engines.md)."""
    spark: SparkSettings = SparkSettings()
    """Spark's settings; as an environment variable, a JSON object."""
    root: str = "."
    """Directory that relative ParquetSource paths are resolved against."""
    memory_limit: str = "50%"
    """DuckDB memory limit: an absolute size ("4GB") or a share of physical memory ("50%")."""
    temp_directory: str | None = None
    """Where DuckDB spills when a join outgrows the memory limit; default: a folder in the system temp dir."""
    threads: int | None = None
    """Worker threads; default: the number of cores."""
    @field_validator("spark", mode="before")
    @classmethod
    def _spark_from_json(cls, value: Any) -> Any:
        return _json_object(value, "offline_store.spark")  # PITSTOP_OFFLINE_STORE_SPARK='{"master": "yarn"}'

    delta_retention_hours: float = Field(default=168.0, ge=0)
    """``pitstop compact`` vacuums files that Delta batch tables stopped using longer ago than this.
    Training sets recorded before then can no longer be reproduced (``as_of`` fails naming the version)."""


class OnlineStoreSettings(_Section):
    """The online store: ``sqlite:///path`` (embedded default), ``redis://host:port/db`` or
    ``redis+cluster://host:port[,host:port...]`` (Redis Cluster)."""

    url: str = "sqlite:///data/online.db"
    key_ttl_seconds: float | None = Field(default=None, gt=0)
    """Redis only: an entity's values expire this long after its last accepted write (of any view),
    so entities that stop receiving data stop holding memory; default: never."""
    max_future_seconds: float | None = Field(default=300.0, ge=0)
    """Latest accepted event (and created) time, as seconds after the writer's clock, for every writer:
    push (HTTP and Python) refuses the rows, the ingester dead-letters the message, materialization
    skips the row. ``0``: nothing in the future; ``null``: no bound (only the year-2262 limit)."""
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    """Redis only: longest wait to open a connection to Redis."""
    read_timeout_seconds: float = Field(default=5.0, gt=0)
    """Redis only: longest wait for any one reply (or send); a call that times out fails with an
    online-store error. Serving requests are bounded separately by ``serving.request_timeout_ms``."""


class MaterializeSettings(_Section):
    """Batch materialization (``pitstop materialize-incremental`` and ``pitstop schedule``)."""

    lookback_seconds: float = Field(default=3600.0, ge=0)
    """Incremental runs re-read this long before each view's watermark, so rows whose event time
    is older than the last run but that landed in the offline data after it still reach the online
    store (the write guard makes the overlap harmless). Never reaches past the view's ttl. ``0``:
    read only from the watermark."""


class KafkaSettings(_Section):
    """Kafka consumer settings for stream ingestion."""

    bootstrap_servers: str = "localhost:9092"
    group_id: str = "pitstop-ingester"
    client: Literal["kafka-python", "confluent-kafka"] = "kafka-python"
    """Consumer library; confluent-kafka (librdkafka) is faster and needs ``pip install 'pitstop[kafka]'``."""
    api_version: str = "auto"
    """Broker protocol version the client assumes: ``auto`` (probe the broker) or e.g. ``"3.5.0"``."""
    security: dict[str, Any] = Field(default_factory=dict)
    """Passed as they are to the client, e.g. ``{"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", ...}``
    for kafka-python or ``{"security.protocol": "SASL_SSL", ...}`` for confluent-kafka. As an
    environment variable: a JSON object."""
    session_timeout_ms: int = 10_000
    """Consumer-group session timeout; a crashed ingester's partitions move after about this long."""
    heartbeat_interval_ms: int = 3_000
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a new consumer group starts reading."""
    fetch_max_wait_ms: int = 100
    """Longest time the broker may hold a fetch that has no data yet. Kafka answers as soon as data
    arrives, but some brokers (Tansu) hold the fetch this long regardless, so it bounds freshness."""

    @field_validator("security", mode="before")
    @classmethod
    def _security_from_json(cls, value: Any) -> Any:
        return _json_object(value, "kafka.security")  # PITSTOP_KAFKA_SECURITY='{"security_protocol": "SSL"}'


class IngestSettings(_Section):
    """The stream ingester (``pitstop ingest``): micro-batches, offline file rolling, metrics, retries."""

    batch_size: int = Field(default=5_000, ge=1)
    """At most this many messages per micro-batch (one guarded online write)."""
    batch_ms: int = Field(default=200, ge=1)
    """A micro-batch is written at the latest this long after its first message arrived."""
    offline_roll_seconds: float = Field(default=30.0, gt=0)
    """Streamed rows are appended to the offline Parquet as one file per date at most this often;
    offsets are committed right after (so this bounds the replay after a crash)."""
    offline_roll_rows: int = Field(default=200_000, ge=1)
    """... or as soon as this many rows are waiting."""
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    """Port of the Prometheus ``/metrics`` endpoint; 0 turns it off."""
    metrics_host: str = "0.0.0.0"
    dead_letter_suffix: str = ".dlq"
    """Rejected messages go to ``<topic><suffix>``."""
    retry_backoff_max_s: float = Field(default=30.0, gt=0)
    """Longest wait between retries while the broker or the online store is unavailable."""


class ArtifactSettings(_Section):
    """Where registered model artifacts are copied."""

    path: str = "data/artifacts"


class StorageSettings(_Section):
    """Object storage (``s3://`` paths). Credentials, region and endpoint come from the standard AWS
    chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or a profile or instance role,
    ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for S3-compatible servers), never from pitstop.yaml."""

    cache_dir: str | None = None
    """Where this host keeps local copies of remote Parquet files (by URL, size and mtime); default:
    a folder in the system temp directory."""


class ServingSettings(_Section):
    """The HTTP scoring service (``pitstop serve``)."""

    bind: str = "127.0.0.1:8000"
    """host:port to listen on."""
    workers: int = 2
    """gunicorn worker processes (each holds its own model cache)."""
    timeout: int = 30
    """Seconds a worker may be silent before gunicorn restarts it."""
    graceful_timeout: int = 30
    """Seconds workers get to finish in-flight requests on shutdown (SIGTERM)."""
    keepalive: int = 5
    """Seconds an idle keep-alive connection stays open."""
    max_requests: int = 0
    """Recycle a worker after this many requests; 0 (default) never recycles."""
    max_entities: int = 1000
    """Most entities one /features or /predict request may ask for."""
    model_refresh_seconds: float = 1.0
    """How often each worker checks whether a served alias moved (then loads and swaps in the background)."""
    request_timeout_ms: int = Field(default=1000, ge=1)
    """Deadline of one /features, /predict, /models or /ready request's work on the online store, the
    registry and the model; past it the request answers 503 ``store_unavailable`` naming the dependency."""
    threads: int = Field(default=4, ge=0)
    """Threads per worker that run online reads, model loads and model calls off the event loop. When
    all of them have been blocked for longer than the deadline, requests answer 503 at once. 0 runs
    that work on the event loop itself (measurement only: no deadline, and a hung Redis freezes the worker)."""
    client_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest time a client may take to send one complete request (headers and body), counted from
    the connection opening or the previous response; past it the connection is closed (slow clients)."""
    max_header_bytes: int = Field(default=65_536, ge=1024)
    """Largest request head (request line and headers); larger ones are answered 431 and closed."""
    reuse_port: bool = True
    """Each gunicorn worker listens on its own ``SO_REUSEPORT`` socket, so the kernel spreads new
    connections evenly over the workers; false: one socket shared by all workers (gunicorn's default)."""
    certfile: str | None = None
    """PEM certificate (chain) for HTTPS; with ``keyfile``, ``pitstop serve`` speaks TLS only."""
    keyfile: str | None = None
    """PEM private key of ``certfile`` (readable by the service user only)."""
    invocations_model: str | None = None
    """The model ``POST /invocations`` (MLflow's scoring protocol) scores when the request names none
    (``?model=``): ``NAME`` (its ``production`` alias) or ``NAME@ALIAS``; default: the only registered model."""

    @model_validator(mode="after")
    def _tls_needs_both(self) -> ServingSettings:
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("certfile and keyfile go together: set both for HTTPS, or neither")
        return self


class AuthSettings(_Section):
    """Who may call ``pitstop serve``: API keys from the registry and/or OIDC bearer tokens (docs/security.md)."""

    enabled: bool = True
    """Require credentials on every route but /health and /ready. ``false`` (or ``pitstop serve
    --no-auth``) is refused unless the service binds a loopback address."""
    key_refresh_seconds: float = Field(default=5.0, gt=0)
    """How often each worker reloads the API keys: a new or revoked key takes effect within this bound."""
    oidc_issuer: str | None = None
    """The identity provider's issuer URL (``iss``); setting it turns on bearer JWTs."""
    oidc_audience: str | None = None
    """The ``aud`` tokens must carry (required with ``oidc_issuer``)."""
    oidc_jwks_url: str | None = None
    """Where the issuer publishes its keys; default: from ``<issuer>/.well-known/openid-configuration``."""
    oidc_scopes_claim: str = "scope"
    """The claim holding scopes or roles (a space-separated string or a list)."""
    oidc_scope_map: dict[str, list[str]] = Field(default_factory=dict)
    """Claim values -> pitstop scopes, e.g. ``{"ml-serving": ["predict", "features:read"]}``. As an
    environment variable: a JSON object."""
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_leeway_seconds: float = Field(default=30.0, ge=0)
    """Clock skew allowed on ``exp`` and ``nbf``."""

    @field_validator("oidc_issuer", "oidc_audience", "oidc_jwks_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # PITSTOP_AUTH_OIDC_ISSUER= (e.g. compose's ${VAR:-})

    @field_validator("oidc_scope_map", "oidc_algorithms", mode="before")
    @classmethod
    def _from_json(cls, value: Any, info: ValidationInfo) -> Any:
        if value == "":  # set but empty: the default
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)  # type: ignore[index]
        if isinstance(value, str):  # PITSTOP_AUTH_OIDC_SCOPE_MAP='{"role": ["predict"]}'
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected JSON: {exc}") from None
        return value

    @model_validator(mode="after")
    def _issuer_needs_audience(self) -> AuthSettings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("oidc_audience is required when oidc_issuer is set")
        return self


class MonitoringSettings(_Section):
    """The prediction log that ``pitstop serve`` keeps and the drift checks of ``pitstop monitor`` (docs/monitoring.md)."""

    log_enabled: bool = True
    """Log every /predict (request id, time, model version, entity keys, feature values and statuses,
    request data, predictions) to one Delta table per model under ``log_path``."""
    log_path: str = "data/prediction_log"
    """Folder of the prediction-log tables, relative to ``offline_store.root`` (so an ``s3://`` root
    puts the log on object storage too)."""
    labels_path: str | None = None
    """A Parquet or CSV file of delayed labels (``label`` plus ``request_id``, or the entity keys and
    ``event_timestamp``), relative to the repo; when set, the UI's monitoring page shows each model
    version's performance against it (as ``pitstop monitor performance --labels`` computes it)."""
    log_sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Share of /predict requests logged (a whole request or none of it)."""
    log_buffer_rows: int = Field(default=100_000, ge=1)
    """Most rows (entities) one worker holds before they are written; past it new rows are dropped
    and counted in ``pitstop_prediction_log_dropped_total``, never an error to the caller."""
    log_flush_seconds: float = Field(default=10.0, gt=0)
    """Each worker writes its buffered rows at least this often (and on shutdown)."""
    log_flush_rows: int = Field(default=20_000, ge=1)
    """... or as soon as this many rows wait."""
    log_retention_days: float | None = Field(default=30.0, gt=0)
    """``pitstop compact`` and ``pitstop monitor run`` delete logged rows older than this; null keeps them."""
    profile_sample_rows: int = Field(default=5_000, ge=100)
    """Rows of a training set kept with each model version for the multivariate (MMD) test."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """Significance level of every drift test, after the correction across features."""
    correction: Literal["bh", "bonferroni"] = "bh"
    """How p-values are corrected across features: Benjamini-Hochberg (false discovery rate) or Bonferroni."""
    numeric_threshold: float = Field(default=0.05, ge=0)
    """Smallest Wasserstein distance, in reference standard deviations, that counts as drift of a numeric feature."""
    categorical_threshold: float = Field(default=0.1, ge=0, le=1)
    """Smallest Jensen-Shannon distance (base 2) that counts as drift of a categorical feature."""
    metrics_port: int = Field(default=9109, ge=0, le=65535)
    """Port of ``pitstop monitor run``'s Prometheus endpoint; 0 turns it off."""
    metrics_host: str = "0.0.0.0"


class Settings(_Section):
    """All settings of one feature repo."""

    project: str = "default"
    registry: RegistrySettings = RegistrySettings()
    offline_store: OfflineStoreSettings = OfflineStoreSettings()
    online_store: OnlineStoreSettings = OnlineStoreSettings()
    materialize: MaterializeSettings = MaterializeSettings()
    kafka: KafkaSettings = KafkaSettings()
    ingest: IngestSettings = IngestSettings()
    artifacts: ArtifactSettings = ArtifactSettings()
    serving: ServingSettings = ServingSettings()
    auth: AuthSettings = AuthSettings()
    storage: StorageSettings = StorageSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    repo_path: Path = Path(".")

    def resolve(self, path: str | Path) -> Path:
        """Resolve ``path`` against the repo directory unless it is absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.repo_path / p)

    @property
    def registry_path(self) -> Path:
        """Absolute path of the SQLite registry file (meaningless when ``registry.path`` is a URL)."""
        return self.resolve(self.registry.path)

    @property
    def offline_root(self) -> Path | str:
        """What relative source paths are resolved against: an absolute folder, or an ``s3://`` URL."""
        root = self.offline_store.root
        return root.rstrip("/") if root.startswith("s3://") else self.resolve(root)


_SECTIONS = [name for name, f in Settings.model_fields.items() if isinstance(f.default, BaseModel)]


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        if rest == "project":
            overrides["project"] = value
            continue
        for section in sorted(_SECTIONS, key=len, reverse=True):
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                if key not in Settings.model_fields[section].annotation.model_fields:  # type: ignore[union-attr]
                    raise ConfigError(f"environment variable {var}: section {section!r} has no setting {key!r}")
                overrides.setdefault(section, {})[key] = value
                break
    return overrides


def load_settings(repo_path: str | Path = ".", environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``pitstop.yaml`` in ``repo_path`` and apply ``PITSTOP_*`` overrides.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or holds an unknown or invalid setting.
    """
    repo = Path(repo_path).resolve()
    config_file = repo / CONFIG_FILE
    if not config_file.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {repo}: run `pitstop init` or pass -r/--repo with the feature repo")
    try:
        raw = yaml.safe_load(config_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_file}: expected a mapping of settings at the top level")
    for section, values in _env_overrides(os.environ if environ is None else environ).items():
        if isinstance(values, dict):
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                raise ConfigError(f"{config_file}: section {section!r} must be a mapping")
            raw[section].update(values)
        else:
            raw[section] = values
    try:
        return Settings(**raw, repo_path=repo)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{config_file}: {problems}") from exc
