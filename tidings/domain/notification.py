"""The notification record, and the shapes clients see of it.

`Notification` is what the store hands back and what crosses the fan-out (between nodes
too, later): plain values only, so it serialises as it is. `to_json` is the one place the
contract's notification object is written; `to_json_bytes` its JSON, written once per
record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from tidings.domain.delivery import DeliveryState
from tidings.domain.errors import ValidationFailed
from tidings.domain.model import Medium, Status, isoformat, parse_instant


class _JsonOnce:
    """The slot where a record keeps its JSON once written. A slot of a base class, not a
    field: the record's values (its fields, which the store maps to columns, compares,
    shows and copies) stay what they are, and a record is built without it (it is unset
    until the first `to_json_bytes`)."""

    __slots__ = ("_json",)
    _json: bytes


@dataclass(frozen=True, slots=True)
class Notification(_JsonOnce):
    id: str
    user_id: str
    type: str
    title: str
    message: str
    channel: str
    priority: str
    status: str
    scheduled_at: datetime | None
    created_at: datetime
    # When the user may see it: created_at, or scheduled_at for a future schedule. Lists,
    # counts and replay go by this instant.
    visible_at: datetime
    delivered_at: datetime | None
    read_at: datetime | None
    data: dict[str, Any]
    in_app: bool  # emitted to sockets and replayed; off: stored and listed only
    producer: str  # the `sub` of the service that created it
    # The parts the producer marked sensitive (`title`, `message`, `data`, `data.<key>`):
    # sealed at rest by the store, in plaintext everywhere else.
    sensitive: tuple[str, ...] = ()
    # Its deliveries to the user, by medium (attached by the store where it answers a
    # client; empty where nobody needs them).
    deliveries: tuple[DeliveryState, ...] = ()
    # Made from a template: {"key", "version", "locale"}; and the rendered email and push
    # parts (`content`: subject, text, html, push_title, push_body) where given.
    template: dict[str, Any] | None = None
    content: dict[str, str] | None = None
    # Inbox states (DESIGN section 12): seen in a list, archived by the user, a link
    # followed; after `expires_at` no medium carries it and the inbox hides it.
    seen_at: datetime | None = None
    archived_at: datetime | None = None
    clicked_at: datetime | None = None
    expires_at: datetime | None = None
    url: str | None = None  # the primary link
    actions: list[dict[str, str]] | None = None  # [{"label", "url"}], at most 3
    # The producer's Idempotency-Key of the create that made it (cancel by key finds
    # every copy by it); not shown to clients.
    idempotency_key: str | None = None
    # Media chosen for it that no provider of this server could take, skipped at creation
    # ("no email provider is configured"): kept here rather than as delivery rows, and
    # shown in `deliveries` as those rows would be (`unserved_states`).
    unserved: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The notification object of the contract (section 5)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "type": self.type,
            "title": self.title,
            "message": self.message,
            "channel": self.channel,
            "priority": self.priority,
            "status": self.status,
            "scheduled_at": isoformat(self.scheduled_at),
            "created_at": isoformat(self.created_at),
            "delivered_at": isoformat(self.delivered_at),
            "read_at": isoformat(self.read_at),
            "data": self.data,
            "deliveries": [delivery.to_json() for delivery in self.deliveries],
            "template": self.template,
            "seen_at": isoformat(self.seen_at),
            "archived_at": isoformat(self.archived_at),
            "clicked_at": isoformat(self.clicked_at),
            "expires_at": isoformat(self.expires_at),
            "url": self.url,
            "actions": self.actions,
        }

    def to_json_bytes(self) -> bytes:
        """`to_json` as orjson writes it (compact UTF-8), written on the first call and
        kept: the record is frozen, and its JSON is the same for every reader (a single
        create's HTTP answer, and the socket event sent before it). Raises TypeError where
        orjson refuses the object (an integer beyond 64 bits in `data`), and keeps
        nothing: each writer then spells it with its own fallback."""
        written: bytes | None = getattr(self, "_json", None)
        if written is None:
            written = orjson.dumps(self.to_json())
            object.__setattr__(self, "_json", written)  # frozen: the cache is set once
        return written

    def written_json(self) -> bytes | None:
        """What `to_json_bytes` wrote and kept, if it was called; None otherwise. A reader
        that is not sure to be joined by another writes its own JSON rather than keep it
        (a channel's thousands of copies, emitted once each, are not kept)."""
        written: bytes | None = getattr(self, "_json", None)
        return written

    @classmethod
    def from_json(cls, body: dict[str, Any], *, producer: str = "") -> Notification:
        """The inverse of `to_json`, for answers kept as JSON (idempotency keys)."""
        created = parse_instant(body["created_at"])
        scheduled = _instant(body.get("scheduled_at"))
        return cls(
            id=body["id"], user_id=body["user_id"], type=body["type"], title=body["title"],
            message=body["message"], channel=body["channel"], priority=body["priority"],
            status=body["status"], scheduled_at=scheduled, created_at=created,
            visible_at=max(created, scheduled) if scheduled else created,
            delivered_at=_instant(body.get("delivered_at")),
            read_at=_instant(body.get("read_at")), data=body.get("data") or {},
            in_app=True, producer=producer, sensitive=tuple(body.get("$sensitive", ())),
            deliveries=tuple(
                DeliveryState(d["medium"], d["status"], d["attempts"], d.get("last_error"),
                              parse_instant(d["updated_at"]), d.get("digest_id"),
                              _instant(d.get("deferred_until")), d.get("step", 0))
                for d in body.get("deliveries", ())
            ),
            template=body.get("template"),
            seen_at=_instant(body.get("seen_at")),
            archived_at=_instant(body.get("archived_at")),
            clicked_at=_instant(body.get("clicked_at")),
            expires_at=_instant(body.get("expires_at")),
            url=body.get("url"), actions=body.get("actions"),
        )

    def live_at(self, now: datetime) -> bool:
        """Still for its user: neither canceled nor past its expiry."""
        return self.status != Status.CANCELED and (self.expires_at is None or self.expires_at > now)

    @property
    def position(self) -> tuple[datetime, str]:
        """Where it sorts in the user's timeline (lists and replay go by this)."""
        return (self.visible_at, self.id)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A notification's status moved: every socket of its user hears of it."""

    id: str
    user_id: str
    status: str
    delivered_at: datetime | None
    read_at: datetime | None

    @classmethod
    def of(cls, notification: Notification) -> StatusChange:
        return cls(notification.id, notification.user_id, notification.status,
                   notification.delivered_at, notification.read_at)

    def to_json(self) -> dict[str, Any]:
        """The `notificationStatus` event body."""
        return {
            "id": self.id,
            "status": self.status,
            "delivered_at": isoformat(self.delivered_at),
            "read_at": isoformat(self.read_at),
        }


class InboxAction(StrEnum):
    """What happened to a user's inbox (DESIGN section 12's `inboxChanged` actions)."""

    READ_ALL = "read_all"
    SEEN = "seen"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class InboxChange:
    """A user's inbox changed in a way a notification event does not carry (an item went):
    every socket of the user hears of it, so other tabs and devices drop or restyle items
    without a reload. Fields other than `action` are set where the action has them: `ids`
    names the notifications; a bulk change may instead say what it covered (`before`,
    `channel`, `type`)."""

    user_id: str
    action: InboxAction
    ids: tuple[str, ...] | None = None
    before: datetime | None = None
    channel: str | None = None
    type: str | None = None

    @classmethod
    def deleted(cls, user_id: str, ids: tuple[str, ...]) -> InboxChange:
        return cls(user_id, InboxAction.DELETED, ids=ids)

    @classmethod
    def of_ids(cls, user_id: str, action: InboxAction, ids: tuple[str, ...]) -> InboxChange:
        return cls(user_id, action, ids=ids)

    def to_json(self) -> dict[str, Any]:
        """The `inboxChanged` event body: the action, and only the fields that are set."""
        body: dict[str, Any] = {"action": self.action.value}
        if self.ids is not None:
            body["ids"] = list(self.ids)
        if self.before is not None:
            body["before"] = isoformat(self.before)
        if self.channel is not None:
            body["channel"] = self.channel
        if self.type is not None:
            body["type"] = self.type
        return body


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One medium's delivery row, written with its notification."""

    notification_id: str
    user_id: str
    medium: Medium
    status: str
    attempts: int
    due_at: datetime
    created_at: datetime
    last_error: str | None = None
    digest_id: str | None = None  # held for this digest (pacing)
    trace: str | None = None  # the create's traceparent, when tracing is on
    rank: int = 2  # the claim's order: `rank_of` its notification's priority

    step: int = 0  # the escalation step that wrote it (0: the create itself)

def rank_of(priority: str) -> int:
    """Where a delivery stands in the claim's order (DESIGN section 12): critical first,
    then high, then the rest."""
    return {"critical": 0, "high": 1}.get(priority, 2)


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What `GET /api/notifications` narrows the list by."""

    status: str | None = None
    unread: bool = False
    channel: str | None = None
    type: str | None = None
    archived: bool = False  # only archived ones; otherwise archived ones are hidden


def _instant(value: str | None) -> datetime | None:
    return parse_instant(value) if value else None


@dataclass(frozen=True, slots=True)
class Created:
    """A create addressed to one user: their stored notification."""

    notification: Notification


@dataclass(frozen=True, slots=True)
class Accepted:
    """A create addressed to several users or a channel's subscribers: how many copies;
    or a broadcast (`broadcast_id`): the one notification every user lists."""

    count: int
    channel: str
    broadcast_id: str | None = None

    def body(self) -> dict[str, Any]:
        """The answer's JSON (without the HTTP status)."""
        if self.broadcast_id is not None:
            return {"broadcast": True, "id": self.broadcast_id}
        return {"count": self.count, "channel": self.channel}


CreateOutcome = Created | Accepted
# One item of a bulk create: its outcome, or why it was refused.
BatchItem = CreateOutcome | ValidationFailed
