"""A user's contact: where email and SMS go, in which language and zone, and when not to
disturb.

The delivery workers read it for every email and push (`store/contacts.py`'s `contact_of`);
`PUT /api/users/{user_id}/contact` writes it. What a PUT may carry is checked here, once:
an address an SMTP server could take, a phone number in international form (judged by
`phonenumbers`, stored as E.164: no region is ever guessed), a locale babel knows (stored
as babel spells it, `pt-BR` -> `pt_BR`), an IANA zone, and quiet hours as `HH:MM` 24-hour
wall-clock times.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tidings.domain.addresses import MAX_ADDRESS_LENGTH, valid_address
from tidings.domain.fields import LocaleTag, Text, ZoneName
from tidings.domain.model import isoformat

CONTACT_FIELDS = ("email", "phone", "slack_user_id", "locale", "timezone", "quiet_hours")
MAX_PHONE_INPUT = 64  # spaces, dashes and parentheses allowed around the digits
_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_CLOCK_DOC = Field(json_schema_extra={"pattern": f"^{_CLOCK.pattern}$"})


@dataclass(frozen=True, slots=True)
class QuietHours:
    """`HH:MM` wall-clock times in the contact's zone; `end` before `start` spans midnight."""

    start: str
    end: str

    def to_json(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Contact:
    user_id: str
    email: str | None
    locale: str | None
    timezone: str | None
    quiet_hours: QuietHours | None
    updated_at: datetime
    phone: str | None = None  # E.164
    slack_user_id: str | None = None  # for Slack direct messages (medium chat)

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "phone": self.phone,
            "slack_user_id": self.slack_user_id,
            "locale": self.locale,
            "timezone": self.timezone,
            "quiet_hours": self.quiet_hours.to_json() if self.quiet_hours else None,
            "updated_at": isoformat(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class ContactChange:
    """A write to one contact: only the fields named in `given` change (`None` clears one);
    the others keep their stored value (null when there is no contact yet)."""

    given: frozenset[str]
    email: str | None = None
    locale: str | None = None
    timezone: str | None = None
    quiet_hours: QuietHours | None = None
    phone: str | None = None
    slack_user_id: str | None = None


def _clock(value: str) -> str:
    if not _CLOCK.fullmatch(value):
        raise ValueError("must be a 24-hour time HH:MM, such as '22:00'")
    return value


def _address(value: str) -> str:
    if not valid_address(value):
        raise ValueError("must be an email address such as 'ada@example.com'")
    return value


def _phone(value: str) -> str:
    """The number as E.164. Only the international form is taken: a national number
    would need a region, and guessing one could text a stranger."""
    if not value.strip().startswith("+"):
        raise ValueError("must be in international form with a leading '+', such as "
                         "'+41446681800'")
    parsed = None
    with suppress(phonenumbers.NumberParseException):
        parsed = phonenumbers.parse(value, None)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
# Slack member ids: a capital U or W, then capitals and digits (Slack's own form).
SLACK_USER_PATTERN = r"^[UW][A-Z0-9]{2,31}$"


class QuietHoursInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Annotated[str, AfterValidator(_clock), _CLOCK_DOC]
    end: Annotated[str, AfterValidator(_clock), _CLOCK_DOC]


class ContactInput(BaseModel):
    """The body of `PUT /api/users/{user_id}/contact`; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[Text, Field(max_length=MAX_ADDRESS_LENGTH,
                                 json_schema_extra={"format": "email"}),
                     AfterValidator(_address)] | None = None
    phone: Annotated[Text, Field(max_length=MAX_PHONE_INPUT,
                                 json_schema_extra={"example": "+41446681800",
                                                    "pattern": r"^\s*\+"}),
                     AfterValidator(_phone)] | None = None
    # A Slack member id as Slack shows it ("U024BE7LH"; "W..." on Enterprise Grid).
    slack_user_id: Annotated[str, Field(pattern=SLACK_USER_PATTERN,
                                        json_schema_extra={"example": "U024BE7LH"})] | None = None
    locale: LocaleTag | None = None
    timezone: ZoneName | None = None
    quiet_hours: QuietHoursInput | None = None

    def change(self) -> ContactChange:
        quiet = self.quiet_hours
        # Start equal to end is an empty window: stored as no quiet hours at all.
        hours = QuietHours(quiet.start, quiet.end) if quiet and quiet.start != quiet.end else None
        return ContactChange(
            given=frozenset(self.model_fields_set & set(CONTACT_FIELDS)),
            email=self.email, phone=self.phone, locale=self.locale, timezone=self.timezone,
            quiet_hours=hours, slack_user_id=self.slack_user_id,
        )
