"""Every setting of a server process: one typed object, read once at start-up.

``Settings.from_env(**flags)`` reads the ``LOYALTY_*`` variables and lets command-line flags
win. Each option is declared once in :data:`OPTIONS` (its field, variable, flag and parser), so
a bad value is refused with a message that names where it came from
(``LOYALTY_PORT: must be a whole number (got 'abc')``) as :class:`~engine.errors.InvalidInput`,
never a traceback. The store's settings are nested: :class:`EmbeddedSettings` and
:class:`RedisSettings`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import InvalidInput

ROLES = ("checkout", "offline-sync", "marketing", "admin")
STORES = ("embedded", "redis")
LOG_FORMATS = ("text", "json")
TRACING = ("auto", "on", "off")


@dataclass(frozen=True, slots=True)
class EmbeddedSettings:
    """The SQLite store (its directory is :attr:`Settings.data_dir`)."""

    synchronous: str = "FULL"  # or "NORMAL": see server.store.embedded.store
    busy_timeout_ms: int = 10_000
    rolling_spend_months: int = 12  # window of the rolling qualifying spend


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The Redis store and registry."""

    url: str = "redis://127.0.0.1:6379/0"  # or unix:///path/redis.sock
    # a Redis Cluster: url names any seed node (redis://HOST:PORT); redis-py's RedisCluster
    # (server.store.redis.io.connect; README "Running on Redis Cluster")
    cluster: bool = False
    prefix: str = "loyalty:"
    # transactions, returns, adjustments (0 = forever): longer than the return window; a
    # commit keeps its outcome record and the answer it gave for this long (a few KB)
    tx_retention_s: int = 60 * 86400
    max_attempts: int = 16  # optimistic retries of one operation under contention
    connect_timeout_s: float = 0.5
    socket_timeout_s: float = 2.0
    max_connections: int = 64
    rolling_spend_months: int = 12
    # per-process cache of what a quote reads, kept coherent by Redis client tracking
    # (server.store.redis.cache); the size is in keys (members, codes), least recently used
    # go first; a member of ~300 stored bytes takes ~600 bytes of the process's memory
    member_cache: bool = True
    member_cache_size: int = 50_000
    # a commit (cancel, return, adjustment) is answered OK only once this many replicas of
    # the node that took it acknowledged it (WAIT); fewer within wait_timeout_ms: UNAVAILABLE,
    # the write stays and a retry under the same id answers it (server.store.redis.replicas,
    # README "Durability on a cluster"); None = 1 on a cluster, 0 on a single Redis
    wait_replicas: int | None = None
    wait_timeout_ms: int = 1000

    @property
    def replicas(self) -> int:
        """The replicas a durable write waits for (``wait_replicas`` or its default)."""
        if self.wait_replicas is not None:
            return self.wait_replicas
        return 1 if self.cluster else 0


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port (tests)
    data_dir: Path = Path(".loyalty")  # the embedded store and rule registry
    store: str = "embedded"  # or "redis"
    threads: int = 4  # per worker: see server.api.app for the measurement
    # server processes sharing the port (SO_REUSEPORT); 0 = one per core
    # (server.api.app.processes)
    workers: int = 0
    cpu_pin: bool = False  # worker i runs on core i only
    # API key -> role; required when listening on a non-loopback address
    api_keys: dict[str, str] = field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # API keys off loopback without TLS would travel in clear: refused unless this is set
    # (e.g. behind a proxy that terminates TLS); a warning is logged at every start
    insecure_plaintext_keys: bool = False
    max_message_bytes: int = 4 * 1024 * 1024
    grace_s: float = 5.0
    # the server's clock prices: a lane's occurred_at may differ from it by this much
    # (INVALID_ARGUMENT beyond); offline lanes sync through SyncOffline, priced at their own
    # time, up to offline_max_age_s after it
    max_skew_s: float = 300.0
    offline_max_age_s: float = 72 * 3600.0
    # Prometheus /metrics over HTTP (0 = off); metrics_host None = the same host as the service
    metrics_port: int = 9464
    metrics_host: str | None = None
    # the HTTP side (server.web): the Connect JSON API, /healthz and the console (0 = off);
    # http_host None = the same host as the service
    http_port: int = 8080
    http_host: str | None = None
    # OpenTelemetry traces: auto = on when the standard OTEL_* variables name an exporter or
    # an OTLP endpoint (server.api.tracing), on, or off
    tracing: str = "auto"
    log_format: str = "text"  # or "json": one object per line
    log_member_ids: bool = False  # False: access lines carry a short hash of the member id
    # the hash's key (HMAC-SHA-256); empty: plain SHA-256
    log_member_key: str = field(default="", repr=False)
    # PublishRuleSet first simulates a rule set with guardrails over this many days of the
    # ledger and refuses it when a basket breaches them (server.api.publish_gate); 0 = off
    publish_simulate_days: int = 0
    embedded: EmbeddedSettings = field(default_factory=EmbeddedSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """The defaults, then the ``LOYALTY_*`` variables of ``env`` (default: the process
        environment), then ``flags`` that are not None (keyword = the option's name in
        :data:`OPTIONS`, e.g. ``port=50052, redis_url="redis://..."``); then checked."""
        env = os.environ if env is None else env
        unknown = set(flags) - {o.name for o in OPTIONS}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        values: dict[str, Any] = {}
        for o in OPTIONS:
            if flags.get(o.name) is not None:
                values[o.name] = flags[o.name]
            elif env.get(o.env):
                values[o.name] = o.read(env[o.env])
        settings = cls().replace(**values)
        settings.check()
        return settings

    def replace(self, **values: Any) -> Settings:
        """A copy with options changed by name (``redis_url=...`` reaches ``redis.url``)."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {"embedded": {}, "redis": {}}
        for name, value in values.items():
            paths = OPTION_BY_NAME[name].paths if name in OPTION_BY_NAME else (name,)
            for path in paths:
                group, _, leaf = path.rpartition(".")
                (nested[group] if group else top)[leaf] = value
        for group, changes in nested.items():
            if changes:
                top[group] = dataclasses.replace(getattr(self, group), **changes)
        return dataclasses.replace(self, **top)

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)

    @property
    def web_host(self) -> str:
        """Where the HTTP side listens: ``http_host``, by default the service's host."""
        return self.http_host or self.host

    @property
    def http_loopback(self) -> bool:
        return _is_loopback(self.web_host)

    @property
    def http_plaintext_keys(self) -> bool:
        """API keys would cross the network in clear over HTTP (on, off loopback, no TLS)."""
        return (
            bool(self.http_port and self.api_keys)
            and not self.http_loopback
            and self.tls_cert is None
        )

    @property
    def plaintext_keys(self) -> bool:
        """API keys would cross the network in clear (keys, off loopback, no TLS)."""
        return bool(self.api_keys) and not self.loopback and self.tls_cert is None

    def check(self) -> None:
        """Refuse settings that cannot work together; the message names the options."""
        bad = InvalidInput()
        if self.store not in STORES:
            bad.add("--store", f"unknown store {self.store!r}: embedded or redis")
        if self.workers < 0:
            bad.add("--workers", f"must be 0 (one per core) or more (got {self.workers})")
        if self.threads < 1:
            bad.add("--threads", f"must be at least 1 (got {self.threads})")
        if self.workers > 1 and self.port == 0:
            bad.add("--port", "--workers needs a fixed --port: the workers share it")
        if not 0 <= self.port <= 65535:
            bad.add("--port", f"must be 0..65535 (got {self.port})")
        if not 0 <= self.metrics_port <= 65535:
            bad.add("--metrics-port", f"must be 0..65535, 0 = off (got {self.metrics_port})")
        elif self.metrics_port and self.metrics_port == self.port:
            bad.add("--metrics-port", f"must differ from --port (both {self.port})")
        if not 0 <= self.http_port <= 65535:
            bad.add("--http-port", f"must be 0..65535, 0 = off (got {self.http_port})")
        elif self.http_port and self.http_port in (self.port, self.metrics_port):
            bad.add("--http-port", f"must differ from --port and --metrics-port ({self.http_port})")
        if self.log_format not in LOG_FORMATS:
            bad.add("--log-format", f"unknown log format {self.log_format!r}: text or json")
        if self.tracing not in TRACING:
            bad.add("--tracing", f"must be auto, on or off (got {self.tracing!r})")
        if not self.loopback and not self.api_keys:
            bad.add(
                "--api-key",
                f"listening on {self.host} needs API keys (LOYALTY_API_KEYS or --api-key): "
                "only loopback may run without them",
            )
        elif self.http_port and not self.http_loopback and not self.api_keys:
            bad.add(
                "--http-host",
                f"HTTP on {self.web_host} needs API keys (LOYALTY_API_KEYS or --api-key): "
                "only loopback may run without them",
            )
        roles = sorted({r for r in self.api_keys.values() if r not in ROLES})
        if roles:
            bad.add("--api-key", f"unknown role(s) {roles}; roles are {ROLES}")
        if (self.tls_cert is None) != (self.tls_key is None):
            bad.add("--tls-cert", "TLS needs both a certificate and a key file")
        elif self.plaintext_keys and not self.insecure_plaintext_keys:
            bad.add(
                "--tls-cert",
                f"API keys on {self.host} without TLS would travel in clear: give --tls-cert "
                "and --tls-key, or --insecure-plaintext-keys (LOYALTY_INSECURE_PLAINTEXT_KEYS) "
                "behind a proxy that terminates TLS",
            )
        elif self.http_plaintext_keys and not self.insecure_plaintext_keys:
            bad.add(
                "--tls-cert",
                f"API keys over HTTP on {self.web_host} without TLS would travel in clear: give "
                "--tls-cert and --tls-key (they serve HTTPS too), --http-host 127.0.0.1, or "
                "--insecure-plaintext-keys behind a proxy that terminates TLS",
            )
        if not 0 <= self.max_skew_s <= 86400:
            bad.add("--max-skew", f"must be 0..86400 seconds (got {self.max_skew_s})")
        if not 0 < self.offline_max_age_s <= 366 * 86400:
            bad.add(
                "--offline-max-age",
                "must be more than 0 and at most 366 days, in seconds "
                f"(got {self.offline_max_age_s})",
            )
        if not 0 <= self.publish_simulate_days <= 366:
            bad.add(
                "--publish-simulate-days",
                f"must be 0 (off) .. 366 days (got {self.publish_simulate_days})",
            )
        if self.embedded.synchronous.upper() not in ("FULL", "NORMAL"):
            bad.add("LOYALTY_SQLITE_SYNCHRONOUS", "must be FULL or NORMAL")
        if self.redis.max_attempts < 1:
            bad.add("LOYALTY_REDIS_MAX_ATTEMPTS", "must be at least 1")
        if self.redis.cluster and not self.redis.url.startswith(("redis://", "rediss://")):
            bad.add(
                "--redis-url",
                "a Redis Cluster is reached over TCP: redis://HOST:PORT of any node "
                f"(got {self.redis.url!r})",
            )
        elif self.redis.cluster and urlsplit(self.redis.url).path not in ("", "/", "/0"):
            bad.add("--redis-url", f"a Redis Cluster has database 0 only (got {self.redis.url!r})")
        if self.redis.wait_replicas is not None and self.redis.wait_replicas < 0:
            bad.add("--redis-wait-replicas", f"must be 0 or more (got {self.redis.wait_replicas})")
        if self.redis.wait_timeout_ms < 1:
            bad.add(
                "--redis-wait-timeout-ms",
                f"must be at least 1 ms (got {self.redis.wait_timeout_ms})",
            )
        if self.redis.member_cache and self.redis.member_cache_size < 1:
            bad.add("LOYALTY_REDIS_MEMBER_CACHE_SIZE", "must be at least 1")
        if bad.violations:
            raise bad


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_api_keys(text: str) -> dict[str, str]:
    """``key:role,key:role`` as a dict (a key may itself contain ``:``)."""
    keys = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, _, role = item.rpartition(":")
        if not key:
            raise InvalidInput.at("--api-key", f"entry {item!r} must be KEY:ROLE")
        keys[key] = role
    return keys


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be a whole number (got {text!r})") from None


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false (got {text!r})")


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number of seconds (got {text!r})") from None


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: ``name`` (the keyword of ``from_env`` and the flag's dest), where it lives
    in :class:`Settings` (``path``, or several), its variable and how a variable's text
    becomes a value."""

    name: str
    path: str | tuple[str, ...]
    env: str
    parse: Callable[[str], Any] = str

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,) if isinstance(self.path, str) else self.path

    def read(self, text: str) -> Any:
        try:
            return self.parse(text)
        except InvalidInput as exc:
            message = "; ".join(v.description for v in exc.violations)
            raise InvalidInput.at(self.env, message) from None
        except ValueError as exc:
            raise InvalidInput.at(self.env, str(exc)) from None


OPTIONS: tuple[Option, ...] = (
    Option("host", "host", "LOYALTY_HOST"),
    Option("port", "port", "LOYALTY_PORT", _whole),
    Option("data_dir", "data_dir", "LOYALTY_DATA_DIR", Path),
    Option("store", "store", "LOYALTY_STORE"),
    Option("threads", "threads", "LOYALTY_THREADS", _whole),
    Option("workers", "workers", "LOYALTY_WORKERS", _whole),
    Option("cpu_pin", "cpu_pin", "LOYALTY_CPU_PIN", _flag),
    Option("api_keys", "api_keys", "LOYALTY_API_KEYS", parse_api_keys),
    Option("tls_cert", "tls_cert", "LOYALTY_TLS_CERT", Path),
    Option("tls_key", "tls_key", "LOYALTY_TLS_KEY", Path),
    Option(
        "insecure_plaintext_keys",
        "insecure_plaintext_keys",
        "LOYALTY_INSECURE_PLAINTEXT_KEYS",
        _flag,
    ),
    Option("grace_s", "grace_s", "LOYALTY_GRACE_S", _seconds),
    Option("max_skew_s", "max_skew_s", "LOYALTY_MAX_SKEW_S", _seconds),
    Option("offline_max_age_s", "offline_max_age_s", "LOYALTY_OFFLINE_MAX_AGE_S", _seconds),
    Option("metrics_port", "metrics_port", "LOYALTY_METRICS_PORT", _whole),
    Option("metrics_host", "metrics_host", "LOYALTY_METRICS_HOST"),
    Option("http_port", "http_port", "LOYALTY_HTTP_PORT", _whole),
    Option("http_host", "http_host", "LOYALTY_HTTP_HOST"),
    Option("tracing", "tracing", "LOYALTY_TRACING", str.lower),
    Option("log_format", "log_format", "LOYALTY_LOG_FORMAT", str.lower),
    Option("log_member_ids", "log_member_ids", "LOYALTY_LOG_MEMBER_IDS", _flag),
    Option("log_member_key", "log_member_key", "LOYALTY_LOG_MEMBER_KEY"),
    Option(
        "publish_simulate_days",
        "publish_simulate_days",
        "LOYALTY_PUBLISH_SIMULATE_DAYS",
        _whole,
    ),
    Option("sqlite_synchronous", "embedded.synchronous", "LOYALTY_SQLITE_SYNCHRONOUS"),
    Option("busy_timeout_ms", "embedded.busy_timeout_ms", "LOYALTY_BUSY_TIMEOUT_MS", _whole),
    Option(
        "rolling_spend_months",
        ("embedded.rolling_spend_months", "redis.rolling_spend_months"),
        "LOYALTY_ROLLING_SPEND_MONTHS",
        _whole,
    ),
    Option("redis_url", "redis.url", "LOYALTY_REDIS_URL"),
    Option("redis_cluster", "redis.cluster", "LOYALTY_REDIS_CLUSTER", _flag),
    Option("redis_prefix", "redis.prefix", "LOYALTY_REDIS_PREFIX"),
    Option("tx_retention_s", "redis.tx_retention_s", "LOYALTY_TX_RETENTION_S", _whole),
    Option("redis_max_attempts", "redis.max_attempts", "LOYALTY_REDIS_MAX_ATTEMPTS", _whole),
    Option("redis_member_cache", "redis.member_cache", "LOYALTY_REDIS_MEMBER_CACHE", _flag),
    Option("redis_wait_replicas", "redis.wait_replicas", "LOYALTY_REDIS_WAIT_REPLICAS", _whole),
    Option(
        "redis_wait_timeout_ms",
        "redis.wait_timeout_ms",
        "LOYALTY_REDIS_WAIT_TIMEOUT_MS",
        _whole,
    ),
    Option(
        "redis_member_cache_size",
        "redis.member_cache_size",
        "LOYALTY_REDIS_MEMBER_CACHE_SIZE",
        _whole,
    ),
)
OPTION_BY_NAME = {o.name: o for o in OPTIONS}
