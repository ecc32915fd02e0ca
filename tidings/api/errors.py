"""Where domain errors and request-validation errors become HTTP answers: the one table from
error to status code, and the one envelope, `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import Scope

from tidings.domain.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TidingsError,
    Unavailable,
    ValidationFailed,
    error_body,
)
from tidings.domain.inputs import first_problem

log = logging.getLogger(__name__)


class InvalidJson(TidingsError):
    """A request body that could not be decoded as JSON (or as text at all)."""

    code = "invalid_json"

    def __init__(self) -> None:
        super().__init__("the body is not valid JSON", field="body")


STATUS: dict[type[TidingsError], int] = {
    InvalidJson: 400,
    ValidationFailed: 422,
    AuthenticationFailed: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    Unavailable: 503,
}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def status_of(exc: TidingsError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def headers_of(exc: TidingsError, status: int) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    return None


def error_response(status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def log_unexpected(exc: Exception) -> None:
    log.exception("unhandled error", exc_info=exc)


UNEXPECTED = error_body("internal_error", "the server could not do that")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The `Allow` of a 405 (RFC 9110 15.5.6): every method of the resource, not only
    those of the one route Starlette tried. FastAPI makes a route per method, so the
    methods of a path are those of every route with the path template of the route that
    matched the path (a literal path such as `/api/notifications/preferences` is its own
    resource, as in the OpenAPI document, not also an id of `/{notification_id}`)."""
    template = getattr(scope.get("route"), "path", None)
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        if route.path == template:
            methods.update(route.methods or ())
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(TidingsError)
    async def domain_error(_request: Request, exc: TidingsError) -> JSONResponse:
        status = status_of(exc)
        return error_response(status, exc.body(), headers_of(exc, status))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            return error_response(400, InvalidJson().body())
        return error_response(422, first_problem(errors, "body").body())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it could not decode at all (bytes that are not
            # UTF-8): the same answer as any other body that is not JSON, naming the field.
            return error_response(400, InvalidJson().body())
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        allow = allowed_methods(request.app.routes, request.scope) if exc.status_code == 405 else ""
        if allow:
            headers = {**(headers or {}), "Allow": allow}
        return error_response(exc.status_code, error_body(code, str(exc.detail)), headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log_unexpected(exc)
        return error_response(500, UNEXPECTED)
