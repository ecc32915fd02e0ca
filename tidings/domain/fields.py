"""The field types the inputs are made of: names, text every store can keep, JSON objects,
instants, locales and zones, user ids and whole numbers, each with its rule and its
spelling in the OpenAPI document (`inputs.py` builds the request bodies from them)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, WithJsonSchema

from tidings.domain.locales import (
    COMPONENT,
    LOCALE_SCHEMA,
    ZONE_SCHEMA,
    check_zone,
    normalize_locale,
)
from tidings.domain.model import WILDCARD, parse_instant

# A topic name: letters, digits and `_ . -`. No `:` (room names such as `user:bob` are the
# server's own), no spaces, at most 100 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
# An `Idempotency-Key`: 1-255 printable ASCII characters. No space at either end: HTTP
# strips those from a header value, so such a key would not arrive as sent.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def is_idempotency_key(value: str) -> bool:
    return _IDEMPOTENCY_KEY.fullmatch(value) is not None


def is_name(value: object) -> bool:
    """A valid channel or type name (the whole string: a trailing newline is not)."""
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def _name_rule(*, wildcard: bool) -> AfterValidator:
    """A channel or type name (`CHANNEL_PATTERN`), optionally `*` as well."""

    def check(value: str) -> str:
        if wildcard and value == WILDCARD:
            return value
        if not is_name(value):
            raise ValueError(
                ("must be '*' or " if wildcard else "must be ")
                + "1-100 characters of letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        return value

    return AfterValidator(check)


# How deep `data` (and template `variables`) may nest: far beyond any real payload, far
# below what would exhaust the JSON encoder's recursion when the value is read back.
MAX_DATA_DEPTH = 32


def storable_text(text: str) -> str:
    """Text every store can keep and every reader can encode: PostgreSQL refuses NUL, and a
    lone UTF-16 surrogate (a JSON escape such as "\\ud800") has no UTF-8 form."""
    if "\x00" in text:
        raise ValueError("must not contain the NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (a lone surrogate such as \\ud800 is not)") from exc
    return text


def _storable_json(value: Any, depth: int = 0) -> Any:
    """`storable_text` for every key and string of a JSON value, which nests at most
    `MAX_DATA_DEPTH` levels."""
    if depth > MAX_DATA_DEPTH:
        raise ValueError(f"must not nest more than {MAX_DATA_DEPTH} levels deep")
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
    elif isinstance(value, dict):
        for key, item in value.items():
            storable_text(key)
            _storable_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable_json(item, depth + 1)
    return value


Text = Annotated[str, AfterValidator(storable_text)]
# A locale or a zone (`locales.py`), normalised; the document lists them in a component.
LocaleTag = Annotated[str, AfterValidator(normalize_locale),
                      WithJsonSchema({COMPONENT: LOCALE_SCHEMA})]
ZoneName = Annotated[str, AfterValidator(check_zone),
                     WithJsonSchema({COMPONENT: ZONE_SCHEMA})]
JSONObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]


def _instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 instant (a string)")
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 instant") from exc


# An instant as clients send it: an ISO 8601 string (no offset: UTC), never a number, as
# the document's `date-time` says.
Instant = Annotated[
    datetime,
    PlainValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# The same rule for the OpenAPI document, so that clients (and generated ones) see which
# names are accepted; `_name_rule` stays the one that judges, with its clearer message.
_NAME_DOC = Field(json_schema_extra={"pattern": f"^{NAME_PATTERN.pattern}$"})
_NAME_OR_WILDCARD_DOC = Field(
    json_schema_extra={"pattern": f"^(\\*|{NAME_PATTERN.pattern})$"})
Name = Annotated[str, _name_rule(wildcard=False), _NAME_DOC]
NameOrWildcard = Annotated[str, _name_rule(wildcard=True), _NAME_OR_WILDCARD_DOC]
UserId = Annotated[Text, Field(min_length=1, max_length=255)]


def _integral(value: Any) -> Any:
    """JSON Schema's `integer` is any number without a fractional part (`60.0` too): such
    a float becomes the int it is; every other value goes on to the strict check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A whole number as JSON Schema has it: no strings, no booleans, no fractions.
WholeNumber = Annotated[int, BeforeValidator(_integral)]
