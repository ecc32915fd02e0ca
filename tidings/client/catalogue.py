"""The types catalogue as the client sees it (admin tokens only): one type, and a page of
them. Plain records read from the server's JSON; unknown fields are ignored, so a newer
server does not break an older client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NotificationType:
    """A (channel, type) of the catalogue: its name and description per locale, whether
    it goes through opt-outs (`required`), the media a create without `media` considers,
    its escalation steps and its digest (`{"key", "window_seconds"}`)."""

    channel: str
    type: str
    name: dict[str, str]
    description: dict[str, str] | None = None
    required: bool = False
    default_media: list[str] | None = None
    escalation: list[dict[str, Any]] | None = None
    digest: dict[str, Any] | None = None
    updated_at: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NotificationType:
        return cls(channel=body["channel"], type=body["type"], name=dict(body["name"]),
                   description=body.get("description"), required=bool(body.get("required")),
                   default_media=body.get("default_media"), escalation=body.get("escalation"),
                   digest=body.get("digest"), updated_at=body.get("updated_at"))


@dataclass(frozen=True, slots=True)
class TypePage:
    items: list[NotificationType]
    next_cursor: str | None


def type_body(name: dict[str, str], description: dict[str, str] | None, required: bool,
              default_media: list[str] | None, escalation: list[dict[str, Any]] | None,
              digest: dict[str, Any] | None) -> dict[str, Any]:
    """A PUT's body: the whole type (what is left out takes its default on the server)."""
    body: dict[str, Any] = {"name": name, "required": required}
    for field, value in (("description", description), ("default_media", default_media),
                         ("escalation", escalation), ("digest", digest)):
        if value is not None:
            body[field] = value
    return body
