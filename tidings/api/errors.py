"""Where domain errors and request-validation errors become HTTP answers: the one table from
error to status code, and the one envelope, `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

STATUS: dict[type[TidingsError], int] = {
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


def install(app: FastAPI) -> None:
    @app.exception_handler(TidingsError)
    async def domain_error(_request: Request, exc: TidingsError) -> JSONResponse:
        status = status_of(exc)
        return error_response(status, exc.body(), headers_of(exc, status))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            return error_response(400, error_body("invalid_json", "the body is not valid JSON",
                                                  "body"))
        return error_response(422, first_problem(errors, "body").body())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it could not decode at all (bytes that are not
            # UTF-8): the same answer as any other body that is not JSON, naming the field.
            return error_response(400, error_body("invalid_json", "the body is not valid JSON",
                                                  "body"))
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, error_body(code, str(exc.detail)), headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log_unexpected(exc)
        return error_response(500, UNEXPECTED)
