"""A throwaway Redis Cluster on free loopback ports, for tests and benchmarks.

Six ``redis-server --cluster-enabled yes`` nodes (:class:`~server.store.redis.process.
RedisProcess` each, in one temporary directory) joined by ``redis-cli --cluster create
--cluster-replicas 1``: three primaries with the 16384 slots split between them, one replica
each. ``cluster-node-timeout`` is short so a killed primary is failed over within seconds::

    with ClusterProcess() as cluster:
        store = open_store("redis", url=cluster.url, cluster=True)

Production points ``--redis-url`` at any node of a managed cluster; this only starts a private
one so the test suite never touches shared data.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from server.store.redis.process import RedisProcess, free_port


def cluster_support() -> str | None:
    """Why a cluster cannot be started here (no ``redis-cli``, a ``redis-server`` without
    cluster support); None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if shutil.which("redis-cli") is None:
        return "redis-cli is not installed (it creates the cluster)"
    out = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    version = out.split("v=", 1)[-1].split(" ", 1)[0]
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return f"cannot tell the redis-server version from {out!r}"
    if major < 7:
        return f"redis-server {version}: the harness needs Redis 7 (--cluster-port)"
    return None


class ClusterProcess:
    """``primaries`` primaries with ``replicas`` replicas each, on free loopback ports.

    :attr:`nodes` are the servers (primaries first, in ``redis-cli``'s order before it picks
    roles: read the roles from Redis, :meth:`primary_of`), :attr:`url` a seed node's URL.
    """

    def __init__(
        self, *, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 1000
    ) -> None:
        reason = cluster_support()
        if reason is not None:
            raise RuntimeError(f"cannot start a Redis Cluster: {reason}")
        if primaries < 3:
            raise ValueError("a Redis Cluster needs at least 3 primaries")
        self._tmp = tempfile.TemporaryDirectory(prefix="loyalty-cluster-")
        root = Path(self._tmp.name)
        self.replicas = replicas
        ports = _ports(2 * primaries * (1 + replicas))
        self.nodes = [
            RedisProcess(
                port=port,
                data_dir=root / str(port),
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(root / str(port) / "nodes.conf"),
                    "--cluster-node-timeout",
                    str(node_timeout_ms),
                    "--cluster-port",  # the bus: a second free port, not port + 10000
                    str(bus),
                    "--cluster-require-full-coverage",
                    "no",
                    "--repl-diskless-sync-delay",  # a replica syncs at once, not after 5 s
                    "0",
                ),
            )
            for port, bus in zip(ports[::2], ports[1::2], strict=True)
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout_s: float = 60.0) -> ClusterProcess:
        deadline = time.monotonic() + timeout_s
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{n.port}" for n in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=max(1.0, deadline - time.monotonic()),
            )
            self.wait_ok(deadline)
        except BaseException:
            self.close()
            raise
        return self

    def wait_ok(self, deadline: float) -> None:
        """Until every running node reports ``cluster_state:ok`` and knows every node, and
        every primary has its replicas in sync (a commit waits for one: ``WAIT``)."""
        while True:
            if all(self._ok(n) for n in self.nodes if n.proc is not None):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok in time")
            time.sleep(0.1)

    def _ok(self, node: RedisProcess) -> bool:
        client = redis.Redis(port=node.port, socket_timeout=1)
        try:
            info = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
            text = info.decode() if isinstance(info, bytes) else str(info)
            if (
                "cluster_state:ok" not in text
                or f"cluster_known_nodes:{len(self.nodes)}" not in text
            ):
                return False
            info = client.info("replication")
            if info.get("role") != "master":
                return True
            online = sum(
                1 for k, v in info.items() if k.startswith("slave") and v.get("state") == "online"
            )
            return online >= self.replicas
        except redis.RedisError:
            return False
        finally:
            client.close()

    def primary_of(self, key: str) -> RedisProcess:
        """The node serving ``key``'s slot now."""
        client = redis.RedisCluster.from_url(self.url)
        try:
            port = client.get_node_from_key(key).port  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return next(n for n in self.nodes if n.port == port)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self._tmp.cleanup()

    def __enter__(self) -> ClusterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ports(n: int) -> list[int]:
    """``n`` distinct free ports."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


__all__ = ["ClusterProcess", "cluster_support"]
