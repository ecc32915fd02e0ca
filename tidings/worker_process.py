"""`tidings worker`: the delivery workers alone, in a process of their own.

Several of these (and `tidings serve` nodes with WORKERS_IN_SERVE=false) share the queue in
the database. On SIGTERM or SIGINT a worker claims nothing more, finishes and settles the
batch in hand, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from tidings.config.settings import Settings
from tidings.container import build_core

log = logging.getLogger("tidings.worker")


async def run(settings: Settings, *, ready: asyncio.Event | None = None,
              stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or a termination signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    # No sockets here. With Redis, the status changes this worker makes reach the sockets
    # on the serve nodes live; without it, clients learn them by replay. A create on any
    # node wakes this worker at once over Redis, or over PostgreSQL's LISTEN/NOTIFY; on
    # SQLite (one node) it polls.
    core = build_core(settings, serve=False)
    await core.start()
    log.info("Tidings delivery worker started")
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("Tidings delivery worker stopping: finishing the batch in hand")
        await core.stop()
        log.info("Tidings delivery worker stopped")
