"""`loyalty serve` as a child process, for tests that need the real command (its logs, its
metrics endpoint, its memory): started on a free port, stopped with SIGTERM, which it must
answer by exiting 0."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Served:
    """The running server: its announce line, its gRPC port (None when the line names none),
    the process, and the file its stderr goes to."""

    line: str
    port: int | None
    proc: subprocess.Popen[str]
    stderr: Path

    @property
    def target(self) -> str:
        assert self.port is not None, self.line
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def serve_process(
    tmp_path: Path, *flags: str, env: dict[str, str] | None = None, clean_env: bool = False
) -> Iterator[Served]:
    """``loyalty serve --port 0 FLAGS --data-dir TMP/data``; on leaving, SIGTERM and exit 0.
    ``clean_env``: drop the caller's ``LOYALTY_*`` and ``OTEL_*`` variables first."""
    err = tmp_path / "stderr.log"
    base = dict(os.environ)
    if clean_env:
        base = {k: v for k, v in base.items() if not k.startswith(("LOYALTY_", "OTEL_"))}
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli.main", "serve", "--port", "0", *flags]
            + ["--data-dir", str(tmp_path / "data")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**base, **(env or {})},
        )
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            yield Served(line, int(match.group(1)) if match else None, proc, err)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
