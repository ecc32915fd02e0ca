"""Notification templates: what an admin stores, and the parts a rendering produces.

A template is a key with numbered versions; every version holds one variant per locale,
and a variant holds the Jinja2 source of some of the seven parts. `title` and `message`
are what the inbox shows; the others shape the email and the push. A part a variant leaves
out comes from the default locale's variant, then from `fallback_parts` (the rules that
hold for notifications without a template).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.domain.errors import ValidationFailed
from tidings.domain.fields import JSONObject, Text
from tidings.domain.locales import COMPONENT, LOCALE_SCHEMA, normalize_locale
from tidings.domain.model import isoformat

TEXT_PARTS = ("title", "message", "subject", "text", "push_title", "push_body", "sms")
PARTS = (*TEXT_PARTS, "html")
# The parts a notification keeps besides its title and message (its `content`).
CONTENT_PARTS = ("subject", "text", "html", "push_title", "push_body", "sms")
MAX_SOURCE_BYTES = 64 * 1024  # per part, as UTF-8
MAX_OUTPUT_CHARS = 100 * 1024  # per rendered part
KEY_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}"


def fallback_parts(title: str, message: str) -> dict[str, str]:
    """The parts of a notification without a template (or a part no variant gives)."""
    return {
        "subject": title,
        "text": message,
        "html": "<p>" + html.escape(message).replace("\n", "<br>\n") + "</p>",
        "push_title": title,
        "push_body": message,
        "sms": f"{title}: {message}",
    }


def normalise_locale(value: str, field: str) -> str:
    """A locale as babel spells it (`de-at` -> `de_AT`), or a 422 naming `field`."""
    try:
        return normalize_locale(value)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}", field=field) from exc


# The locales of a template's body, for the document (judged by `checked`, which names
# the variant or field in its 422).
_LOCALE_DOC: dict[str, Any] = {COMPONENT: LOCALE_SCHEMA}


def locale_chain(wanted: str | None, default: str) -> list[str]:
    """Where a recipient's variant is looked for: `de_AT` -> `de` -> the default."""
    chain: list[str] = []
    if wanted:
        chain.append(wanted)
        language = wanted.split("_", 1)[0]
        if language != wanted:
            chain.append(language)
    chain.append(default)
    return list(dict.fromkeys(chain))


class VariantInput(BaseModel):
    """One locale's parts (Jinja2 source); each at most 64 KB."""

    model_config = ConfigDict(extra="forbid")

    title: Text | None = None
    message: Text | None = None
    subject: Text | None = None
    text: Text | None = None
    html: Text | None = None
    push_title: Text | None = None
    push_body: Text | None = None
    sms: Text | None = None

    def sources(self) -> dict[str, str]:
        return {part: value for part in PARTS
                if (value := getattr(self, part)) is not None}


class TemplateDraft(BaseModel):
    """The body of `POST /api/admin/templates` and `PUT /api/admin/templates/{key}`."""

    model_config = ConfigDict(extra="forbid")

    key: Text = Field(..., pattern=f"^{KEY_PATTERN}$")
    default_locale: Text | None = Field(None, max_length=35, json_schema_extra=_LOCALE_DOC)
    variants: dict[Text, VariantInput] = Field(..., min_length=1, max_length=100,
                                               json_schema_extra={"propertyNames": _LOCALE_DOC})

    @model_validator(mode="after")
    def _bounded(self) -> TemplateDraft:
        for locale, variant in self.variants.items():
            for part, source in variant.sources().items():
                if len(source.encode()) > MAX_SOURCE_BYTES:
                    raise ValueError(f"variants.{locale}.{part} is larger than 64 KB")
        return self

    def checked(self) -> tuple[str, dict[str, dict[str, str]]]:
        """(default locale, variants by normalised locale), or a 422 naming the field: a
        locale babel does not know, two spellings of one locale, a default without a
        variant, a default variant without `title` or `message`."""
        variants: dict[str, dict[str, str]] = {}
        for given, variant in self.variants.items():
            locale = normalise_locale(given, f"variants.{given}")
            if locale in variants:
                raise ValidationFailed(f"variants.{given}: locale {locale} given twice",
                                       field=f"variants.{given}")
            variants[locale] = variant.sources()
        default = (normalise_locale(self.default_locale, "default_locale")
                   if self.default_locale else next(iter(variants)))
        if default not in variants:
            raise ValidationFailed(f"default_locale: no variant for {default}",
                                   field="default_locale")
        for part in ("title", "message"):
            if part not in variants[default]:
                raise ValidationFailed(
                    f"variants.{default}.{part}: the default locale's variant needs it",
                    field=f"variants.{default}.{part}")
        return default, variants


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: JSONObject = Field(default_factory=dict)
    locale: Text | None = Field(None, max_length=35, json_schema_extra=_LOCALE_DOC)


@dataclass(frozen=True, slots=True)
class Template:
    """One stored version of a template."""

    key: str
    version: int
    default_locale: str
    variants: dict[str, dict[str, str]]
    created_by: str
    created_at: datetime

    def variant_for(self, wanted: str | None) -> str:
        """The locale of the variant a recipient of locale `wanted` gets."""
        return next(locale for locale in locale_chain(wanted, self.default_locale)
                    if locale in self.variants)

    def sources_for(self, locale: str) -> dict[str, str]:
        """The chosen variant's parts, completed from the default locale's variant."""
        return {**self.variants[self.default_locale], **self.variants[locale]}

    def summary(self) -> dict[str, Any]:
        """An item of the list (the latest version of a key)."""
        return {"key": self.key, "version": self.version,
                "default_locale": self.default_locale, "locales": sorted(self.variants),
                "updated_at": isoformat(self.created_at)}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "variants": self.variants,
                "created_by": self.created_by}


@dataclass(frozen=True, slots=True)
class Rendered:
    """One rendering of a template: the variant used and every part it produced (parts
    neither the variant nor the default variant gives are absent)."""

    key: str
    version: int
    locale: str
    parts: dict[str, str]

    @property
    def ref(self) -> dict[str, Any]:
        """What the notification records as its `template`."""
        return {"key": self.key, "version": self.version, "locale": self.locale}

    @property
    def content(self) -> dict[str, str]:
        return {part: self.parts[part] for part in CONTENT_PARTS if part in self.parts}

    def all_parts(self) -> dict[str, str]:
        """Every part as it would go out, the rules filling what the template leaves."""
        title, message = self.parts["title"], self.parts["message"]
        return {"title": title, "message": message,
                **fallback_parts(title, message), **self.content}


def is_key(value: str) -> bool:
    """Whether `value` can be a template's key (`KEY_PATTERN`): anything else names no
    template, and never reaches the database."""
    return re.fullmatch(KEY_PATTERN, value) is not None


# The list by key takes the last key of a page as its cursor: opaque to clients, of the
# form of a key (the document says so), and any key is a place in the list.
KEY_CURSOR_PATTERN = f"^{KEY_PATTERN}$"


def encode_key_cursor(key: str) -> str:
    """The opaque cursor of the list by key: the last key of a page."""
    return key


def decode_key_cursor(cursor: str) -> str:
    if not is_key(cursor):
        raise ValidationFailed("cursor is not one this server gave out", field="cursor")
    return cursor
