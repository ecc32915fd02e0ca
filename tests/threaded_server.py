"""A real Tidings server on an event loop of its own thread, for tests whose client side
is synchronous (schemathesis calls the API with blocking `requests`, which would freeze a
server sharing the test's loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from tests.conftest import RunningServer, start_server
from tidings.config.settings import Settings

START_TIMEOUT_S = 30.0


async def _cancel_leftovers() -> None:
    """Tasks the server left behind (none should be) end before their loop closes."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@contextlib.contextmanager
def server_in_thread(settings: Settings) -> Iterator[RunningServer]:
    """Starts a server on 127.0.0.1 in a daemon thread; stops it, and the thread, on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tidings-test-server", daemon=True)
    thread.start()
    try:
        running = asyncio.run_coroutine_threadsafe(start_server(settings), loop).result(
            START_TIMEOUT_S)
        try:
            yield running
        finally:
            asyncio.run_coroutine_threadsafe(running.stop(), loop).result(START_TIMEOUT_S)
    finally:
        asyncio.run_coroutine_threadsafe(_cancel_leftovers(), loop).result(START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)
        loop.close()
