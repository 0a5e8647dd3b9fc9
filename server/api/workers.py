"""How many server processes ``loyalty serve`` runs, and keeping each on its own core.

One worker process per core is the default (``--workers 0``): the sync gRPC server runs Python
on one core at a time per process, so a second core needs a second process (SO_REUSEPORT
spreads connections over them).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from server.settings import Settings

log = logging.getLogger(__name__)


def processes(settings: Settings) -> int:
    """The server processes ``serve`` runs: ``settings.workers``, or for 0 one per core this
    process may run on; one when the port is 0, since workers share a port and each would get
    a different free one (tests and one-off servers use port 0)."""
    if settings.workers:
        return settings.workers
    return 1 if settings.port == 0 else cores()


def cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: those it is allowed to run on, fewer when a cgroup
    quota (a container's ``--cpus``) allows less CPU time than that (rounded up)."""
    allowed = len(os.sched_getaffinity(0))
    try:
        quota, period = cgroup.read_text().split()[:2]
    except (OSError, ValueError):
        return allowed
    if quota == "max" or not period.isdigit() or not quota.isdigit() or int(period) <= 0:
        return allowed
    return max(1, min(allowed, -(-int(quota) // int(period))))


def pin(index: int) -> None:
    """Run this process (every thread it has, and those it starts) on core ``index`` of those
    it may use (wrapping around when there are fewer), so that workers do not migrate
    between cores and each keeps its caches warm."""
    cores = sorted(os.sched_getaffinity(0))
    core = cores[index % len(cores)]
    for task in os.listdir("/proc/self/task"):  # this thread and any started already
        try:
            os.sched_setaffinity(int(task), {core})
        except ProcessLookupError:  # it ended meanwhile
            pass
    log.info("pinned to core %d", core)
