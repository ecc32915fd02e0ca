"""One exception hierarchy for the whole domain.

Services and the store raise these; the HTTP edge (`api/errors.py`) maps each class to a
status code and the Socket.IO edge (`realtime/gateway.py`) to an `error` event, each in one
place. The `code` is stable and machine-readable; the message is for people.
"""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The error object of the contract, `{"code", "message", "field"?}`: the one place
    its shape is written (HTTP answers wrap it in `{"error": ...}`)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return body


class TidingsError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.field)


class ValidationFailed(TidingsError):
    code = "validation_error"


class AuthenticationFailed(TidingsError):
    code = "authentication_failed"


class KeyReused(ValidationFailed):
    """An idempotency key sent again with a different request (a client bug: answering the
    first result would hide it)."""

    code = "idempotency_key_reused"


class Forbidden(TidingsError):
    code = "forbidden"


class NotFound(TidingsError):
    code = "not_found"


class Conflict(TidingsError):
    """The request is valid but clashes with the current state (a replay of a delivery
    that is not dead, a key taken by another request)."""

    code = "conflict"


class PayloadTooLarge(TidingsError):
    code = "payload_too_large"


class Unavailable(TidingsError):
    code = "unavailable"


class DuplicateKey(TidingsError):
    """Raised by the store where a unique key (an idempotency key) was taken by a
    concurrent transaction, which has been rolled back; the caller reads the winner's
    result instead. Never reaches an edge."""

    code = "duplicate_key"


class RateLimited(TidingsError):
    """Over a rate limit: the same request may succeed after `retry_after` seconds (a whole
    number, at least 1), which the answer carries (HTTP also as `Retry-After`)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "retry_after": self.retry_after}


class TooManyConnections(TidingsError):
    """A user already holds as many sockets on this node as allowed; the connect is
    refused (Socket.IO `connect_error` with this message)."""

    code = "too_many_connections"
