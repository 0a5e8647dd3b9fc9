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
