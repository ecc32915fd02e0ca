"""The client's error hierarchy: every failure a caller can see is a `TidingsError`, built
from the server's error envelope `{"error": {"code", "message", "field"?}}` (or, for a
network failure, from the last exception), so callers branch on types, not on strings."""

from __future__ import annotations

from typing import Any


class TidingsError(Exception):
    """A request Tidings refused or could not answer. `status` is the HTTP status (None
    when no answer arrived), `code` the server's machine-readable code, `field` the input
    field at fault when the server named one."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "error",
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
                f"message={self.message!r}, field={self.field!r})")


class ValidationError(TidingsError):
    """400 or 422: the input is wrong; `field` names the part at fault. Never retried."""


class AuthenticationError(TidingsError):
    """401 (or a Socket.IO connection refused): the token is missing, expired or wrong."""


class PermissionDenied(TidingsError):
    """403: the token is valid but its roles do not allow this (e.g. create without
    `service` or `admin`)."""


class NotFound(TidingsError):
    """404: no such notification for this user (another user's id answers the same)."""


class Conflict(TidingsError):
    """409."""


class SubscriptionLimit(Conflict):
    """409 `subscription_limit`: a topic change would take users past the per-user cap;
    nothing was changed. `user_ids` names them (the first 100), `over` counts them all."""

    def __init__(self, message: str, *, user_ids: list[str], over: int,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.user_ids = user_ids
        self.over = over


class PayloadTooLarge(TidingsError):
    """413: the body (or a batch) is over the server's limit."""


class RateLimited(TidingsError):
    """429 after the retries allowed: `retry_after` is the server's advice in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(TidingsError):
    """503, or no answer at all (connection refused, timeout), after the retries allowed."""


_BY_STATUS: dict[int, type[TidingsError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: Unavailable,
}


# Socket.IO acknowledgements carry a code and no status: the same types by code.
_BY_CODE: dict[str, type[TidingsError]] = {
    "validation_error": ValidationError,
    "invalid_json": ValidationError,
    "authentication_failed": AuthenticationError,
    "forbidden": PermissionDenied,
    "not_found": NotFound,
    "conflict": Conflict,
    "idempotency_key_reused": Conflict,
    "payload_too_large": PayloadTooLarge,
    "rate_limited": RateLimited,
    "unavailable": Unavailable,
}


def error_from_body(status: int | None, body: Any, *,
                    retry_after: float | None = None) -> TidingsError:
    """The typed error for an error object (`{"code", "message", "field"?}`) or for an
    HTTP answer's whole envelope; an unexpected shape still gives a `TidingsError`."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or f"HTTP {status}")
    code = str(body.get("code") or "error")
    field = body.get("field") if isinstance(body.get("field"), str) else None
    kind = _BY_STATUS.get(status or 0) or _BY_CODE.get(code, TidingsError)
    if code == "subscription_limit":
        named = body.get("user_ids")
        return SubscriptionLimit(
            message, user_ids=[str(u) for u in named] if isinstance(named, list) else [],
            over=int(body.get("over") or 0), status=status, code=code, field=field)
    if kind is RateLimited:
        return RateLimited(message, retry_after=retry_after, status=status, code=code,
                           field=field)
    return kind(message, status=status, code=code, field=field)
