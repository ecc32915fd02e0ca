"""The measured server's memory and CPU, read from the outside (psutil, i.e. /proc).

The process and its children are summed, so a server that forks workers (or a node
process with helpers) is counted whole.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import psutil


def pid_listening_on(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1:port, when ``--server-pid`` is not given."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if (
                conn.status == psutil.CONN_LISTEN
                and conn.laddr
                and conn.laddr.port == port
                and conn.pid
            ):
                return int(conn.pid)
    except psutil.AccessDenied:
        return None
    return None


@dataclass
class Sample:
    at_s: float
    rss_bytes: int
    cpu_s: float


@dataclass
class ServerMonitor:
    pid: int
    samples: list[Sample] = field(default_factory=list)

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def sample(self) -> Sample:
        rss = 0
        cpu = 0.0
        for process in self._tree():
            try:
                rss += process.memory_info().rss
                times = process.cpu_times()
                cpu += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        sample = Sample(time.monotonic(), rss, cpu)
        self.samples.append(sample)
        return sample

    async def sample_every(self, interval: float, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set (the soak scenario's RSS-over-time curve)."""
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass


def cpu_percent(before: Sample, after: Sample) -> float:
    """CPU used between two samples, in percent of one core."""
    wall = after.at_s - before.at_s
    return 100.0 * (after.cpu_s - before.cpu_s) / wall if wall > 0 else 0.0


def processes_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of this process plus ``pids`` (the load generator's workers).

    Not this process's children in general: a server started by the tool is one of them.
    """
    total = 0.0
    for pid in [os.getpid(), *pids]:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot; minus server and generator, what
    other processes took (a busy machine disturbs the figures, and the report says so)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))
