"""One exception hierarchy for the whole domain.

Services raise these; the HTTP layer (`api/errors.py`) and the Socket.IO layer
(`realtime/gateway.py`) each translate them in one place, to a status code or an `error`
payload. The `code` is stable and machine-readable; the message is for people.
"""

from __future__ import annotations


class TidingsError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class ValidationFailed(TidingsError):
    code = "validation_error"
    http_status = 422


class AuthenticationFailed(TidingsError):
    code = "authentication_failed"
    http_status = 401


class Forbidden(TidingsError):
    code = "forbidden"
    http_status = 403


class NotFound(TidingsError):
    code = "not_found"
    http_status = 404


class PayloadTooLarge(TidingsError):
    code = "payload_too_large"
    http_status = 413


class Unavailable(TidingsError):
    code = "unavailable"
    http_status = 503
