"""The ASGI application factory: HTTP API and Socket.IO on one app, one port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from tidings import __version__
from tidings.api import (
    admin,
    clicks,
    contacts,
    devices,
    docs_pages,
    errors,
    feeds,
    health,
    inbox_states,
    notifications,
    openapi,
    preference_centre,
    preferences,
    templates,
    topics,
    types,
    unsubscribe,
    web,
)
from tidings.api.fast_create import FastCreate
from tidings.api.limits import BodySizeLimit
from tidings.api.requests import RequestContext
from tidings.config.settings import Settings
from tidings.container import Services, build_services

log = logging.getLogger("tidings")

DESCRIPTION = """Self-hosted real-time notifications. Authenticate with
`Authorization: Bearer <JWT>`; in-app delivery runs over Socket.IO on the same port
(path `/socket.io/`).

Text anywhere in a request (data and variables included) never holds NUL (U+0000) or a
lone surrogate: such a request is a 422 naming the field."""


def create_app(settings: Settings, services: Services | None = None) -> ASGIApp:
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()
            log.info("Tidings stopped")

    # /docs and /redoc are our own routes (api/docs_pages.py): FastAPI's load their
    # scripts from a CDN, a blank page without internet.
    api = FastAPI(title="Tidings", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    api.state.services = services.api
    errors.install(api)
    openapi.install(api, can_seal=settings.keyring() is not None)
    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    # Preferences first: `/api/notifications/preferences` must not be taken for an id.
    api.include_router(preferences.router)
    api.include_router(inbox_states.router)
    api.include_router(notifications.router)
    api.include_router(health.router)
    api.include_router(admin.router)
    api.include_router(contacts.router)
    api.include_router(devices.router)
    api.include_router(unsubscribe.router)
    api.include_router(preference_centre.router)
    api.include_router(preference_centre.pages)
    api.include_router(clicks.router)
    api.include_router(web.build_router())
    api.include_router(docs_pages.build_router(api.title, api.openapi_url or "/openapi.json"))
    api.include_router(templates.router)
    api.include_router(types.router)
    api.include_router(topics.router)
    api.include_router(feeds.router)

    app = services.gateway.transport.asgi(api)
    # The hottest request, a create, skips FastAPI's per-request machinery (the route
    # above still documents it and answers what the lean path hands back).
    app = FastCreate(app, services.api, cors=bool(settings.cors_origins))
    app = BodySizeLimit(app, settings.max_body_bytes)
    return RequestContext(app, services.metrics)
