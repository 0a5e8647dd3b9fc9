"""Build the loyalty-client wheel, install it into a virtualenv of its own that has nothing but
grpcio, protobuf and pytest, and run the client's tests there against a real server started
from the main environment (``make client-test``, and ``tests/test_client_package.py``).

    .venv/bin/python clients/python/slim_env.py [pytest args...]

The virtualenv is ``build/client-venv`` (``$LOYALTY_CLIENT_VENV``); it is reused while the
client's sources are unchanged (a hash of them is stamped in it), else the wheel is rebuilt and
reinstalled. The wheel is built by the calling Python (setuptools, no build isolation: nothing
to download) from a copy of the sources, so no build/ or egg-info is left in the tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = Path(os.environ.get("LOYALTY_CLIENT_VENV") or ROOT / "build" / "client-venv")
STAMP = ".loyalty-client-stamp"
# what the slim environment gets besides the client (whose wheel brings grpcio and protobuf)
TEST_REQUIREMENTS = ["pytest>=8.0"]


class NoVenv(RuntimeError):
    """A virtualenv cannot be made here (no venv module or no ensurepip)."""


def sources() -> list[Path]:
    """The files the wheel is built from (relative to this folder)."""
    files = [Path("pyproject.toml"), Path("README.md")]
    for path in sorted((HERE / "src").rglob("*")):
        rel = path.relative_to(HERE)
        if path.is_file() and "__pycache__" not in rel.parts and ".egg-info" not in str(rel):
            files.append(rel)
    return files


def fingerprint() -> str:
    digest = hashlib.sha256()
    for rel in sources():
        digest.update(str(rel).encode() + b"\0" + (HERE / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def build_wheel(out: Path) -> Path:
    """loyalty_client-*.whl into ``out``, built from a copy of the sources."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "loyalty-client"
        for rel in sources():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE / rel, src / rel)
        _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
            + ["-w", str(out), str(src)],
            timeout=300,
        )
    (wheel,) = out.glob("loyalty_client-*.whl")
    return wheel


def python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """The slim virtualenv with the current client installed; its Python."""
    if not python().exists():
        shutil.rmtree(VENV, ignore_errors=True)
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if made.returncode != 0 or not python().exists():
            shutil.rmtree(VENV, ignore_errors=True)
            raise NoVenv(f"python -m venv {VENV} failed: {made.stderr.strip()[-2000:]}")
    stamp = VENV / STAMP
    want = fingerprint()
    if stamp.exists() and stamp.read_text() == want:
        return python()
    stamp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        pip = [str(python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # the client with its declared dependencies (proves they suffice), and pytest
        _run(pip + [str(wheel), *TEST_REQUIREMENTS], timeout=600)
        # the same version number with new contents: replace it, leave the rest
        _run(pip + ["--force-reinstall", "--no-deps", str(wheel)], timeout=300)
    stamp.write_text(want)
    return python()


def run_tests(
    pytest_args: list[str], *, capture: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """The client's tests in the slim virtualenv; the server runs on this (the main) Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("LOYALTY_SERVER_PYTHON", sys.executable)
    return subprocess.run(
        [str(ensure_venv()), "-m", "pytest", *pytest_args],
        cwd=HERE,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        timeout=timeout,
    )


def _run(cmd: list[str], *, timeout: float) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
            f"\n{done.stderr[-3000:]}"
        )


def main(argv: list[str]) -> int:
    try:
        python()  # (nothing to do: makes the venv below, then streams pytest's output)
        return run_tests(argv or ["-q"], capture=False).returncode
    except NoVenv as exc:
        print(f"client tests skipped: {exc}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
