"""The bodies of the inbox-state and cancel routes (DESIGN section 12)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.fields import IDEMPOTENCY_KEY_PATTERN, Name

MAX_SEEN_IDS = 1000


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadAllInput(_Input):
    """`POST /api/notifications/read-all`: all unread, or those of a channel and type."""

    channel: Name | None = None
    type: Name | None = None


class SeenInput(_Input):
    """`POST /api/notifications/seen`: these ids, or (none given) all."""

    ids: list[str] | None = Field(None, max_length=MAX_SEEN_IDS)


class CancelByKeyInput(_Input):
    """`POST /api/notifications/cancel`: every copy of the caller's create under this key."""

    idempotency_key: str = Field(..., pattern=IDEMPOTENCY_KEY_PATTERN)
