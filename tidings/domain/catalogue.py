"""The types catalogue (contract section 11): what an admin says of a (channel, type) of
notification, and the defaults a create of that type takes from it.

A type has a display name per locale (at least one), optionally a description per
locale; `required` (its notifications go through a recipient's opt-out, never through a
missing address or an unconfigured provider); `default_media` (the media considered when
a create names none); `escalation` (section 12's steps, taken by a create that names none) and
`digest` (the window a create of the type joins when it names none). Types not in the
catalogue work as if it did not exist.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from tidings.domain.errors import ValidationFailed
from tidings.domain.fields import NAME_PATTERN, Name, Text, WholeNumber
from tidings.domain.locales import COMPONENT, LOCALE_SCHEMA, normalize_locale
from tidings.domain.model import Medium, isoformat

MAX_LOCALES = 100
MAX_STEPS = 3
MAX_AFTER_SECONDS = 604_800  # a week
MAX_WINDOW_SECONDS = 86_400  # as a create's digest
# The digest windows' key column holds at most this many characters (`store/tables.py`).
MAX_DIGEST_KEY = 100
_LOCALE_DOC: dict[str, Any] = {COMPONENT: LOCALE_SCHEMA}
NameText = Annotated[Text, Field(min_length=1, max_length=200)]
DescriptionText = Annotated[Text, Field(min_length=1, max_length=2000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _unique(media: list[Medium]) -> list[Medium]:
    if len(set(media)) != len(media):
        raise ValueError("media must not repeat")
    return media


class EscalationStep(_Input):
    """One step of section 12: after `after_seconds`, unless the notification reached
    `unless`, deliveries for `media`."""

    after_seconds: WholeNumber = Field(..., ge=1, le=MAX_AFTER_SECONDS, strict=True)
    unless: Literal["seen", "read", "delivered"]
    media: list[Medium] = Field(..., min_length=1, json_schema_extra={"uniqueItems": True})

    @field_validator("media")
    @classmethod
    def _media_unique(cls, media: list[Medium]) -> list[Medium]:
        return _unique(media)


class TypeDigest(_Input):
    """The digest a create of the type joins when it names none; `key` defaults to
    `<channel>/<type>` (a key no create can name, as create keys have no `/`)."""

    key: Name | None = None
    window_seconds: WholeNumber = Field(..., ge=1, le=MAX_WINDOW_SECONDS, strict=True)


class TypeDraft(_Input):
    """The body of `PUT /api/admin/types/{channel}/{type}`: the whole type (a field left
    out takes its default, it does not keep a stored value)."""

    name: dict[Text, NameText] = Field(..., min_length=1, max_length=MAX_LOCALES,
                                       json_schema_extra={"propertyNames": _LOCALE_DOC})
    description: dict[Text, DescriptionText] | None = Field(
        None, max_length=MAX_LOCALES, json_schema_extra={"propertyNames": _LOCALE_DOC})
    required: StrictBool = False
    default_media: list[Medium] | None = Field(None, min_length=1,
                                               json_schema_extra={"uniqueItems": True})
    escalation: list[EscalationStep] | None = Field(None, max_length=MAX_STEPS)
    digest: TypeDigest | None = None

    @field_validator("default_media")
    @classmethod
    def _media_unique(cls, media: list[Medium] | None) -> list[Medium] | None:
        return _unique(media) if media is not None else None

    def checked(self, channel: str, type_: str) -> TypeSpec:
        """The draft as stored, or a 422 naming the field: a locale babel does not know,
        or two spellings of one locale."""
        return TypeSpec(
            name=_texts(self.name, "name"),
            description=(_texts(self.description, "description")
                         if self.description is not None else None),
            required=self.required,
            default_media=tuple(self.default_media) if self.default_media else None,
            escalation=(tuple(step.model_dump(mode="json") for step in self.escalation)
                        if self.escalation else None),
            digest_key=((self.digest.key or default_digest_key(channel, type_))
                        if self.digest else None),
            digest_window=self.digest.window_seconds if self.digest else None,
        )


def _texts(given: dict[str, str], field: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    for locale, text in given.items():
        where = f"{field}.{locale}"
        try:
            normal = normalize_locale(locale)
        except ValueError as exc:
            raise ValidationFailed(f"{where}: {exc}", field=where) from exc
        if normal in texts:
            raise ValidationFailed(f"{where}: locale {normal} given twice", field=where)
        texts[normal] = text
    return texts


def default_digest_key(channel: str, type_: str) -> str:
    """`<channel>/<type>`, or for names too long to fit the key column together a key
    derived from both (still with a `/`, so no create's own key can equal it)."""
    key = f"{channel}/{type_}"
    if len(key) <= MAX_DIGEST_KEY:
        return key
    return "type/" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """What a type says, as stored (locales normalised)."""

    name: dict[str, str]
    description: dict[str, str] | None
    required: bool
    default_media: tuple[Medium, ...] | None
    escalation: tuple[dict[str, Any], ...] | None
    digest_key: str | None
    digest_window: int | None


@dataclass(frozen=True, slots=True)
class NotificationType:
    """One type of the catalogue."""

    channel: str
    type: str
    spec: TypeSpec
    updated_by: str
    updated_at: datetime

    @property
    def media(self) -> frozenset[Medium] | None:
        media = self.spec.default_media
        return frozenset(media) if media is not None else None

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "channel": self.channel, "type": self.type, "name": spec.name,
            "description": spec.description, "required": spec.required,
            "default_media": ([medium.value for medium in spec.default_media]
                              if spec.default_media is not None else None),
            "escalation": list(spec.escalation) if spec.escalation is not None else None,
            "digest": ({"key": spec.digest_key, "window_seconds": spec.digest_window}
                       if spec.digest_key is not None else None),
            "updated_by": self.updated_by, "updated_at": isoformat(self.updated_at),
        }


# The list goes by (channel, type); its cursor is the last pair of a page, as
# `<channel>/<type>`: opaque to clients, and any such value is a place in the list.
TYPE_CURSOR_PATTERN = f"^{NAME_PATTERN.pattern}/{NAME_PATTERN.pattern}$"


def encode_type_cursor(channel: str, type_: str) -> str:
    return f"{channel}/{type_}"


def decode_type_cursor(cursor: str) -> tuple[str, str]:
    if re.fullmatch(TYPE_CURSOR_PATTERN[1:-1], cursor) is None:
        raise ValidationFailed("cursor is not one this server gave out", field="cursor")
    channel, type_ = cursor.split("/", 1)
    return channel, type_
