"""What the client hands back: frozen dataclasses decoded from the contract's JSON
(DESIGN.md sections 5, 8 and 10). Unknown fields the server may add later are ignored, so
an older client keeps working against a newer server; `raw` keeps the whole object."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings.client.errors import TidingsError, error_from_body


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 instant of the API (`Z` or an offset), or None."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One medium's delivery of a notification (`in_app`, `email`, `push`, ...)."""

    medium: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: datetime | None
    digest_id: str | None = None  # held for this digest (quiet hours, throttle, `digest`)
    deferred_until: datetime | None = None  # waiting for the end of quiet hours
    step: int = 0  # 0: the create's own media; 1-3: the escalation step that made it

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Delivery:
        return cls(medium=body["medium"], status=body["status"],
                   attempts=int(body.get("attempts") or 0), last_error=body.get("last_error"),
                   updated_at=parse_time(body.get("updated_at")),
                   digest_id=body.get("digest_id"),
                   deferred_until=parse_time(body.get("deferred_until")),
                   step=int(body.get("step") or 0))


@dataclass(frozen=True, slots=True)
class Action:
    """One of a notification's buttons: a label and the link it follows."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Notification:
    """A stored notification as the API and the `notification` event carry it."""

    id: str
    user_id: str
    type: str
    title: str
    message: str
    channel: str
    priority: str
    status: str
    created_at: datetime
    scheduled_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    deliveries: tuple[Delivery, ...] = ()
    # Made from a template: its key, version and the locale it was rendered in.
    template: dict[str, Any] | None = None
    # Inbox states and links (seen in a list, archived, a link followed; expiry).
    seen_at: datetime | None = None
    archived_at: datetime | None = None
    clicked_at: datetime | None = None
    expires_at: datetime | None = None
    url: str | None = None
    actions: tuple[Action, ...] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def visible_at(self) -> datetime:
        """When the notification became visible to its user: creation, or the scheduled
        time when later (what the server's missed-notification replay orders by)."""
        if self.scheduled_at is not None and self.scheduled_at > self.created_at:
            return self.scheduled_at
        return self.created_at

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Notification:
        created = parse_time(body.get("created_at"))
        if created is None:
            raise ValueError("a notification without created_at")
        return cls(
            id=str(body["id"]), user_id=str(body["user_id"]), type=str(body["type"]),
            title=str(body.get("title") or ""), message=str(body.get("message") or ""),
            channel=str(body.get("channel") or "default"),
            priority=str(body.get("priority") or "medium"),
            status=str(body.get("status") or "pending"), created_at=created,
            scheduled_at=parse_time(body.get("scheduled_at")),
            delivered_at=parse_time(body.get("delivered_at")),
            read_at=parse_time(body.get("read_at")), data=dict(body.get("data") or {}),
            deliveries=tuple(Delivery.from_json(d) for d in body.get("deliveries") or ()),
            template=body.get("template"),
            seen_at=parse_time(body.get("seen_at")),
            archived_at=parse_time(body.get("archived_at")),
            clicked_at=parse_time(body.get("clicked_at")),
            expires_at=parse_time(body.get("expires_at")), url=body.get("url"),
            actions=None if body.get("actions") is None else tuple(
                Action(str(a["label"]), str(a["url"])) for a in body["actions"]),
            raw=body,
        )


@dataclass(frozen=True, slots=True)
class Accepted:
    """A create for several users or a channel's subscribers: how many were notified."""

    count: int
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A broadcast (`notify(..., broadcast=True)`, admins only): the id every user lists
    and acts on."""

    id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """One item of a batch the server refused; the others are unaffected."""

    error: TidingsError


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A `notificationStatus` event: the notification's status changed somewhere."""

    id: str
    status: str
    delivered_at: datetime | None
    read_at: datetime | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StatusChange:
        return cls(id=str(body["id"]), status=str(body["status"]),
                   delivered_at=parse_time(body.get("delivered_at")),
                   read_at=parse_time(body.get("read_at")))


@dataclass(frozen=True, slots=True)
class InboxChange:
    """An `inboxChanged` event: the user's inbox changed somewhere (another tab or device).
    `action` is `read_all` (with `before`, and `channel`/`type` where the call named
    them), `seen` (`ids`, or `before` for all), `archived`, `unarchived` or `deleted`
    (`ids`); others may come, so a handler ignores the actions it does not know."""

    action: str
    ids: tuple[str, ...] | None = None
    before: datetime | None = None
    channel: str | None = None
    type: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> InboxChange:
        ids = body.get("ids")
        channel, kind = body.get("channel"), body.get("type")
        return cls(action=str(body["action"]),
                   ids=tuple(str(item) for item in ids) if isinstance(ids, list) else None,
                   before=parse_time(body.get("before")),
                   channel=None if channel is None else str(channel),
                   type=None if kind is None else str(kind))


@dataclass(frozen=True, slots=True)
class Preference:
    """One preference row; `*` is the wildcard for channel or type, and a flag left None
    in a write keeps its stored value."""

    channel: str = "*"
    notification_type: str = "*"
    email_enabled: bool | None = None
    push_enabled: bool | None = None
    in_app_enabled: bool | None = None
    sms_enabled: bool | None = None
    chat_enabled: bool | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"channel": self.channel,
                                "notification_type": self.notification_type}
        for name in _FLAGS:
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Preference:
        return cls(channel=body["channel"], notification_type=body["notification_type"],
                   email_enabled=body.get("email_enabled"),
                   push_enabled=body.get("push_enabled"),
                   in_app_enabled=body.get("in_app_enabled"),
                   sms_enabled=body.get("sms_enabled"),
                   chat_enabled=body.get("chat_enabled"))


_FLAGS = ("email_enabled", "push_enabled", "in_app_enabled", "sms_enabled", "chat_enabled")


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    """The body of one create: `user_id` (one user, answered with a `Notification`),
    `user_ids` or neither (a channel's subscribers, answered with `Accepted`). `extra`
    carries fields this client does not name (e.g. `digest`, `sensitive`)."""

    type: str
    title: str | None = None
    message: str | None = None
    user_id: str | None = None
    user_ids: list[str] | None = None
    channel: str | None = None
    priority: str | None = None
    data: dict[str, Any] | None = None
    media: list[str] | None = None
    scheduled_at: datetime | str | None = None
    template: str | None = None
    variables: dict[str, Any] | None = None
    # At most 3 steps `{"after_seconds", "unless", "media"}`; `[]`: none, not the type's.
    escalation: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name in ("user_id", "user_ids", "type", "title", "message", "channel",
                     "priority", "data", "media", "template", "variables", "escalation"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.scheduled_at is not None:
            when = self.scheduled_at
            body["scheduled_at"] = when.isoformat() if isinstance(when, datetime) else when
        body.update(self.extra)
        return body


CreateResult = Notification | Accepted | Broadcast
BatchResult = Notification | Accepted | Broadcast | Rejected


def _accepted(body: dict[str, Any]) -> Accepted | Broadcast:
    if body.get("broadcast"):
        return Broadcast(str(body["id"]))
    return Accepted(count=int(body["count"]), channel=body.get("channel"))


def create_result(status: int, body: dict[str, Any]) -> CreateResult:
    """A create's answer: 201 a notification, 202 a count (or a broadcast's id)."""
    if status == 201:
        return Notification.from_json(body)
    return _accepted(body)


def batch_results(body: dict[str, Any]) -> list[BatchResult]:
    """The answer of `POST /api/notifications/batch`, in request order."""
    results: list[BatchResult] = []
    for item in body["results"]:
        status = int(item["status"])
        if status == 201:
            results.append(Notification.from_json(item["notification"]))
        elif status == 202:
            results.append(_accepted(item))
        else:
            results.append(Rejected(error_from_body(status, item.get("error"))))
    return results
