"""Settings: read once from flags and ``LOYALTY_*`` variables; a bad value names its source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import InvalidInput
from server.settings import OPTIONS, Settings


def test_variables_fill_the_nested_store_settings_and_flags_win():
    env = {
        "LOYALTY_PORT": "50070",
        "LOYALTY_STORE": "redis",
        "LOYALTY_REDIS_URL": "redis://10.0.0.5:6380/2",
        "LOYALTY_TX_RETENTION_S": "3600",
        "LOYALTY_SQLITE_SYNCHRONOUS": "NORMAL",
        "LOYALTY_ROLLING_SPEND_MONTHS": "6",
    }

    s = Settings.from_env(env, port=50080, redis_prefix="shop1:")

    assert (s.port, s.store) == (50080, "redis")
    assert (s.redis.url, s.redis.prefix, s.redis.tx_retention_s) == (
        "redis://10.0.0.5:6380/2",
        "shop1:",
        3600,
    )
    assert s.embedded.synchronous == "NORMAL"
    # one window of qualifying spend, whichever store is used
    assert s.embedded.rolling_spend_months == s.redis.rolling_spend_months == 6


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOYALTY_PORT", "abc", "must be a whole number (got 'abc')"),
        ("LOYALTY_WORKERS", "2.5", "must be a whole number (got '2.5')"),
        ("LOYALTY_GRACE_S", "soon", "must be a number of seconds (got 'soon')"),
        ("LOYALTY_API_KEYS", "no-role", "entry 'no-role' must be KEY:ROLE"),
    ],
)
def test_a_bad_variable_is_named_with_its_value(name, value, message):
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env({name: value})

    assert [(v.field, v.description) for v in exc.value.violations] == [(name, message)]


def test_settings_that_cannot_work_together_name_every_option():
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env({}, host="0.0.0.0", workers=-1, store="mongo")

    assert [v.field for v in exc.value.violations] == ["--store", "--workers", "--api-key"]


def test_every_option_has_a_variable_and_a_place():
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    for o in OPTIONS:
        assert o.env.startswith("LOYALTY_")
        for path in o.paths:
            group, _, leaf = path.rpartition(".")
            holder = getattr(Settings(), group) if group else Settings()
            assert hasattr(holder, leaf), path


def test_the_command_line_reports_a_bad_variable_without_a_traceback(tmp_path: Path):
    env = {**os.environ, "LOYALTY_PORT": "abc", "LOYALTY_DATA_DIR": str(tmp_path)}

    out = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert out.returncode == 2
    assert out.stderr.strip() == "error: LOYALTY_PORT: must be a whole number (got 'abc')"


def test_api_keys_off_loopback_need_tls_or_an_explicit_opt_out(tmp_path: Path):
    keys = {"LOYALTY_API_KEYS": "k1:checkout"}
    # on a network address without TLS the keys would travel in clear: refused, naming TLS
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env(keys, host="0.0.0.0")
    [violation] = exc.value.violations
    assert violation.field == "--tls-cert" and "travel in clear" in violation.description
    # with a certificate and key, or the explicit opt-out, or on loopback: accepted
    pem = tmp_path / "x.pem"
    assert Settings.from_env(keys, host="0.0.0.0", tls_cert=pem, tls_key=pem).tls_cert == pem
    opted = Settings.from_env({**keys, "LOYALTY_INSECURE_PLAINTEXT_KEYS": "true"}, host="0.0.0.0")
    assert opted.plaintext_keys and opted.insecure_plaintext_keys
    assert not Settings.from_env(keys, host="127.0.0.1").plaintext_keys


def test_serve_refuses_plaintext_keys_off_loopback_and_warns_when_told(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(LOYALTY_API_KEYS="k1:admin", LOYALTY_METRICS_PORT="0")
    serve = [sys.executable, "-m", "server.cli.main", "serve", "--host", "0.0.0.0"]
    serve += ["--port", "0", "--data-dir", str(tmp_path)]
    refused = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "--tls-cert" in refused.stderr and "travel in clear" in refused.stderr
    # told: it starts, and says so at start (the server is stopped as soon as it listens)
    proc = subprocess.Popen(
        [*serve, "--insecure-plaintext-keys"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the "listening on" line comes after the warning
        assert "listening on" in line, line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert "travel without TLS (--insecure-plaintext-keys)" in err
