"""Topics managed by producers: the change a producer asks for, the records the lists
answer with, and the cursors of those lists.

The lists are ordered by a name (a user id, a channel), not by time, so their cursor is
the last name of a page, written in base64url without padding: opaque to clients, and free
of the characters a user id may hold that a query string would have to escape. As for the
other lists (`cursor.py`), every string of the documented form is a place in the list
(bytes that are no UTF-8 read as U+FFFD, a NUL as nothing: no stored name holds either),
and only a string of another form is a 422 naming `cursor`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.errors import Conflict, ValidationFailed
from tidings.domain.fields import UserId
from tidings.domain.inputs import MAX_RECIPIENTS
from tidings.domain.model import isoformat

# The ids of one change, added and removed together (the contract's 10,000).
MAX_CHANGE_IDS = MAX_RECIPIENTS
# Users named in a 409 over the subscription cap: enough to act on, bounded in size.
NAMED_OVER_CAP = 100

# A user id is at most 255 characters, at most 4 bytes each in UTF-8: 1,020 bytes, 1,360
# characters of base64 without padding; its length is never one more than a multiple of
# four (those strings decode to nothing), which the pattern says.
NAME_CURSOR_PATTERN = r"^(?:[A-Za-z0-9_\-]{4}){0,339}[A-Za-z0-9_\-]{2,4}$"
_NAME_CURSOR = re.compile(NAME_CURSOR_PATTERN)


class SubscriberChange(BaseModel):
    """`PUT /api/channels/{channel}/subscribers`: users to subscribe and to unsubscribe."""

    # The document says what `checked` enforces of it: at least one id, in either list.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["add"], "properties": {"add": {"minItems": 1}}},
        {"required": ["remove"], "properties": {"remove": {"minItems": 1}}},
    ]})

    add: list[UserId] = Field(default_factory=list, max_length=MAX_CHANGE_IDS)
    remove: list[UserId] = Field(default_factory=list, max_length=MAX_CHANGE_IDS)

    def checked(self) -> tuple[list[str], list[str]]:
        """The ids to add and to remove, each once, in the order given. A change with
        neither, more than MAX_CHANGE_IDS ids in all, or an id in both lists is a 422."""
        if not self.add and not self.remove:
            raise ValidationFailed("add: give 'add', 'remove' or both, with at least one "
                                   "user id", field="add")
        if len(self.add) + len(self.remove) > MAX_CHANGE_IDS:
            raise ValidationFailed(f"remove: at most {MAX_CHANGE_IDS} user ids in 'add' and "
                                   "'remove' together", field="remove")
        add = list(dict.fromkeys(self.add))
        remove = list(dict.fromkeys(self.remove))
        both = set(add).intersection(remove)
        if both:
            named = ", ".join(sorted(both)[:5])
            raise ValidationFailed(f"remove: a user id cannot be both added and removed "
                                   f"({named})", field="remove")
        return add, remove


@dataclass(frozen=True, slots=True)
class SubscriberCounts:
    """What a change did: how many subscriptions it made and ended (a repeat: 0 and 0)."""

    added: int
    removed: int

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed}


@dataclass(frozen=True, slots=True)
class Subscriber:
    user_id: str
    since: datetime

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "since": isoformat(self.since)}


@dataclass(frozen=True, slots=True)
class Subscription:
    channel: str
    since: datetime

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "since": isoformat(self.since)}


@dataclass(frozen=True, slots=True)
class ChannelSize:
    channel: str
    subscribers: int

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "subscribers": self.subscribers}


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NamePage(Generic[T]):
    """One page of a list ordered by name; `next_cursor` None on the last one."""

    items: list[T]
    next_cursor: str | None


class SubscriptionLimitReached(Conflict):
    """A producer's change would take users past the per-user subscription cap: nothing
    is changed, and the answer names them (at most NAMED_OVER_CAP), so the producer can
    act on exactly those users."""

    code = "subscription_limit"

    def __init__(self, user_ids: list[str], cap: int) -> None:
        named = user_ids[:NAMED_OVER_CAP]
        super().__init__(
            f"{len(user_ids)} user(s) would have more than {cap} subscriptions: "
            + ", ".join(named[:5]) + ("..." if len(user_ids) > 5 else ""),
            field="add")
        self.user_ids = named
        self.over = len(user_ids)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "user_ids": self.user_ids, "over": self.over}


def encode_name_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_name_cursor(cursor: str) -> str:
    """The place a cursor stands for; a cursor of another form is a 422 naming `cursor`."""
    if _NAME_CURSOR.fullmatch(cursor) is None:
        raise ValidationFailed("cursor is not one this server gave out", field="cursor")
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    return raw.decode("utf-8", errors="replace").replace("\x00", "")
