"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from tidings.api.deps import App
from tidings.domain.errors import AuthenticationFailed

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="The database answers", responses={
    503: {"description": "The database does not answer",
          "content": {"application/json": {"example": {"status": "unavailable",
                                                        "database": "unreachable"}}}}})
async def ready(app: App) -> JSONResponse:
    try:
        await app.db.ping()
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness check failed: %s", exc)
        return JSONResponse({"status": "unavailable", "database": "unreachable"},
                            status_code=503)
    return JSONResponse({"status": "ready", "database": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(app: App, request: Request) -> Response:
    """Open unless METRICS_TOKEN is set; then only `Authorization: Bearer <METRICS_TOKEN>`."""
    expected = app.settings.metrics_token
    if expected:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        # Constant-time, so the token cannot be guessed a byte at a time.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected.encode()
        ):
            raise AuthenticationFailed("GET /metrics needs the METRICS_TOKEN bearer token")
    return Response(app.metrics.render(), media_type=CONTENT_TYPE_LATEST)
