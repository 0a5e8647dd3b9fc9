"""A throwaway ``redis-server`` on a free loopback port, for tests and benchmarks.

Production points ``--redis-url`` at a managed Redis; this module only starts a private one so
the test suite and the benchmarks never touch shared data::

    with RedisProcess(appendonly=True) as r:
        store = open_store("redis", url=r.url)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """Start ``redis-server`` bound to 127.0.0.1 on a free port; stop it on exit.

    ``appendonly=True`` turns on the AOF with ``appendfsync`` (``always`` by default), the
    setting the product needs for acknowledged commits to survive a crash. The data directory
    survives :meth:`stop` so :meth:`start` can restart the same server on the same port.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        port: int | None = None,
        data_dir: str | Path | None = None,
        maxmemory: str | None = None,
        unix_socket: bool = False,
        extra_args: tuple[str, ...] = (),
    ):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: `make test` installs it "
                "(apt-get install redis-server)"
            )
        self.binary = binary
        self.port = port or free_port()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="loyalty-redis-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory
        self.unix_socket = self.data_dir / "redis.sock" if unix_socket else None
        self.extra_args = extra_args  # more redis-server options (the cluster's: cluster_process)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisProcess:
        args = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
        ]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        if self.unix_socket is not None:
            args += ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                try:
                    if client.ping():
                        # an AOF being loaded answers LOADING until it is done
                        return self
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = self.data_dir / "redis.log"
                    text = log.read_text() if log.exists() else ""
                    raise RuntimeError(f"redis-server did not start on {self.port}: {text}")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed beyond what the fsync policy already wrote."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
