"""A user's media preference for a (channel, type), and the rules that pick the media.

`*` stands for any channel or any type. For a (channel, type), the most specific row wins:
exact channel and type, then exact channel with any type, then any channel with the exact
type, then `(*, *)`. Without any row every medium is enabled.

Which media a recipient gets (contract section 11): those considered (the create's
`media`, else every medium) that the recipient's preferences allow. A create never
overrides an opt-out; only a type marked `required` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tidings.domain.model import WILDCARD, Medium

# Each medium's flag in a preference row (and its column, and its JSON field).
FLAG_OF = {Medium.IN_APP: "in_app_enabled", Medium.EMAIL: "email_enabled",
           Medium.PUSH: "push_enabled", Medium.SMS: "sms_enabled",
           Medium.CHAT: "chat_enabled"}
FLAGS = tuple(FLAG_OF[medium] for medium in (Medium.EMAIL, Medium.PUSH, Medium.IN_APP,
                                             Medium.SMS, Medium.CHAT))


@dataclass(frozen=True, slots=True)
class Preference:
    channel: str
    notification_type: str
    email_enabled: bool
    push_enabled: bool
    in_app_enabled: bool
    sms_enabled: bool = True
    chat_enabled: bool = True

    def allows(self, medium: Medium) -> bool:
        return bool(getattr(self, FLAG_OF[medium]))

    def applies_to(self, channel: str, type_: str) -> bool:
        """A candidate for (channel, type): exact or `*` in each part."""
        return (self.channel in (channel, WILDCARD)
                and self.notification_type in (type_, WILDCARD))

    @property
    def specificity(self) -> tuple[bool, bool]:
        return (self.channel != WILDCARD, self.notification_type != WILDCARD)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "notification_type": self.notification_type,
            "email_enabled": self.email_enabled,
            "push_enabled": self.push_enabled,
            "in_app_enabled": self.in_app_enabled,
            "sms_enabled": self.sms_enabled,
            "chat_enabled": self.chat_enabled,
        }


def choose_media(candidates: Iterable[Preference]) -> frozenset[Medium]:
    """The media one user's candidate rows (all matching the same channel and type) allow."""
    best = max(candidates, key=lambda row: row.specificity, default=None)
    if best is None:
        return frozenset(Medium)
    return frozenset(medium for medium in Medium if best.allows(medium))


def chosen_media(considered: frozenset[Medium], allowed: frozenset[Medium], *,
                 required: bool = False) -> frozenset[Medium]:
    """The media one recipient gets: those `considered` that their preferences allow
    (`allowed`, from `choose_media`), or all considered when the type is `required`
    (the types catalogue marks those; none are until it exists)."""
    return considered if required else considered & allowed


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    """A write to one (channel, type) row: a flag left as None keeps its stored value
    (enabled when there is no row yet)."""

    channel: str
    notification_type: str
    email_enabled: bool | None = None
    push_enabled: bool | None = None
    in_app_enabled: bool | None = None
    sms_enabled: bool | None = None
    chat_enabled: bool | None = None

    def given(self) -> dict[str, bool]:
        flags = {"email_enabled": self.email_enabled, "push_enabled": self.push_enabled,
                 "in_app_enabled": self.in_app_enabled, "sms_enabled": self.sms_enabled,
                 "chat_enabled": self.chat_enabled}
        return {name: value for name, value in flags.items() if value is not None}
