"""Server settings: a typed dataclass with defaults, read from flags or the environment."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("checkout", "marketing", "admin")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port (tests)
    data_dir: Path = Path(".loyalty")
    store: str = "embedded"  # or "redis"
    redis_url: str = "redis://127.0.0.1:6379/0"  # or unix:///path/redis.sock
    redis_prefix: str = "loyalty:"
    threads: int = 16
    workers: int = 1  # server processes sharing the port (SO_REUSEPORT)
    # API key -> role; required when listening on a non-loopback address
    api_keys: dict[str, str] = field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_message_bytes: int = 4 * 1024 * 1024
    grace_s: float = 5.0

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """``LOYALTY_HOST``, ``LOYALTY_PORT``, ``LOYALTY_DATA_DIR``, ``LOYALTY_STORE``,
        ``LOYALTY_REDIS_URL``, ``LOYALTY_REDIS_PREFIX``, ``LOYALTY_THREADS``,
        ``LOYALTY_WORKERS``, ``LOYALTY_API_KEYS`` (``key:role,key:role``),
        ``LOYALTY_TLS_CERT``, ``LOYALTY_TLS_KEY``; explicit ``overrides`` (e.g. command-line
        flags) win."""
        env = os.environ
        values: dict = {}
        if "LOYALTY_HOST" in env:
            values["host"] = env["LOYALTY_HOST"]
        if "LOYALTY_PORT" in env:
            values["port"] = int(env["LOYALTY_PORT"])
        if "LOYALTY_DATA_DIR" in env:
            values["data_dir"] = Path(env["LOYALTY_DATA_DIR"])
        for name in ("store", "redis_url", "redis_prefix"):
            if env.get(f"LOYALTY_{name.upper()}"):
                values[name] = env[f"LOYALTY_{name.upper()}"]
        for name in ("threads", "workers"):
            if env.get(f"LOYALTY_{name.upper()}"):
                values[name] = int(env[f"LOYALTY_{name.upper()}"])
        if env.get("LOYALTY_API_KEYS"):
            values["api_keys"] = parse_api_keys(env["LOYALTY_API_KEYS"])
        for name in ("tls_cert", "tls_key"):
            if env.get(f"LOYALTY_{name.upper()}"):
                values[name] = Path(env[f"LOYALTY_{name.upper()}"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    def check(self) -> None:
        if self.store not in ("embedded", "redis"):
            raise ValueError(f"unknown store {self.store!r}: embedded or redis")
        if self.workers < 1 or self.threads < 1:
            raise ValueError("workers and threads must be at least 1")
        if self.workers > 1 and self.port == 0:
            raise ValueError("--workers needs a fixed --port: the workers share it")
        if not self.loopback and not self.api_keys:
            raise ValueError(
                f"listening on {self.host} needs API keys (LOYALTY_API_KEYS "
                "or --api-key): only loopback may run without them"
            )
        bad = sorted({r for r in self.api_keys.values() if r not in ROLES})
        if bad:
            raise ValueError(f"unknown role(s) {bad}; roles are {ROLES}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and a key file")


def parse_api_keys(text: str) -> dict[str, str]:
    keys = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, _, role = item.rpartition(":")
        if not key:
            raise ValueError(f"API key entry {item!r} must be KEY:ROLE")
        keys[key] = role
    return keys
