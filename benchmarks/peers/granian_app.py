"""Tidings' ASGI app as Granian loads it, for measuring Granian against uvicorn (httpserver.py).

Not how Tidings is served (`tidings serve` runs uvicorn, tidings/server.py): a factory for

    granian --interface asgi --factory --loop uvloop --workers 1 \
        benchmarks.peers.granian_app:app

that does what `tidings serve` does around the app, so that only the HTTP server differs:
the settings from the environment, the SQLite schema migrated before serving, the same
garbage-collector thresholds, and start-up objects frozen out of the collector's view once
the lifespan start-up has completed (uvicorn's `serve` does it when the server has started).
Granian itself is not a dependency of the project: install it into the venv to use this.
"""

from __future__ import annotations

import gc

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.app import create_app
from tidings.config import logs
from tidings.config.settings import load_settings
from tidings.jobs import migrate
from tidings.server import GC_THRESHOLDS


def app() -> ASGIApp:
    settings = load_settings()
    logs.configure(settings)
    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
    gc.set_threshold(*GC_THRESHOLDS)
    inner = create_app(settings)

    async def frozen_after_startup(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await inner(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()

        await inner(scope, receive, sending)

    return frozen_after_startup
