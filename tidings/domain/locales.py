"""Which locales and time zones a client may name: the one rule of the contact API, the
templates and the OpenAPI document (which lists them, so clients and generated requests
know them).

A locale is one babel knows, spelt as babel does (`de_AT`, `zh_Hans_CN`), with `-` for
`_` (`pt-BR`, the BCP 47 way), or either of those in lower case (`de-at`); it is stored
as babel spells it. A zone is an IANA name this system's zone database holds.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable

from babel import Locale, localedata

MAX_LOCALE_LENGTH = 35
LOCALE_SCHEMA = "Locale"  # their names in the OpenAPI document's components
ZONE_SCHEMA = "TimeZone"
# A request model's JSON Schema names a component so (`{COMPONENT: LOCALE_SCHEMA}`); the
# document (`api/openapi.py`) makes that a `$ref`, which pydantic cannot take from a model.
COMPONENT = "x-tidings-component"


@functools.cache
def locale_tags() -> frozenset[str]:
    """Every accepted spelling of every locale babel knows."""
    tags: set[str] = set()
    for name in localedata.locale_identifiers():
        for spelling in (name, name.replace("_", "-")):
            tags.update((spelling, spelling.lower()))
    return frozenset(tag for tag in tags if len(tag) <= MAX_LOCALE_LENGTH)


@functools.cache
def zone_names() -> frozenset[str]:
    # `available_timezones` reads the zone database's directory: once per process.
    return frozenset(zoneinfo.available_timezones())


Trie = dict[str, "Trie"]


def exactly(words: Iterable[str]) -> str:
    """A regular expression that matches those words and nothing else, as a trie of
    alternatives (compact; and a document with an `enum` of thousands of values makes
    generators and readers enumerate them all)."""
    trie: Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: Trie) -> str:
        alternatives = [re.escape(char) + branch(child)
                        for char, child in sorted(node.items()) if char]
        if not alternatives:
            return ""
        if "" in node:
            return "(?:" + "|".join(alternatives) + ")?"
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"

    return "^" + branch(trie) + "$"


def normalize_locale(tag: str) -> str:
    """The locale as babel names it (`pt-BR` -> `pt_BR`); ValueError if it is not one of
    `locale_tags`."""
    if tag not in locale_tags():
        raise ValueError(f"unknown locale {tag!r}: a locale such as 'en', 'de_AT' or "
                         "'pt-BR'")
    return str(Locale.parse(tag.replace("-", "_")))


def check_zone(name: str) -> str:
    """An IANA time zone name of this system's zone database; ValueError if not (no path
    ever reaches zoneinfo: only names from its own list are accepted)."""
    if name not in zone_names():
        raise ValueError(f"unknown time zone {name!r}: an IANA name such as 'Europe/Vienna'")
    return name
