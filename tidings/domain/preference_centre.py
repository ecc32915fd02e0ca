"""The preference centre's rules: which lines its page lists, what each switch shows, and
what a submitted form asks to change.

The page lists every (channel, type) the catalogue knows, the user received lately, or
the user has a preference row for (`*` rows included: they are the user's defaults). A
switch shows what applies now (the most specific row, as `choose_media` picks; on
without any row). A `required` type goes through an opt-out, so its switches are shown
on and locked, and a form cannot change it.

The form names each line it shows in a `topic` field (`channel/type`: `/` is in no name)
and each switch that is on as `medium:channel/type`; a switch that is off is simply not
sent, as HTML checkboxes go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tidings.domain.fields import is_name
from tidings.domain.model import WILDCARD, Medium
from tidings.domain.preference import Preference, PreferenceChange

MAX_TOPICS = 500  # as a bulk preference write
MEDIA = tuple(Medium)  # the page's switches, in this order


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What the types catalogue tells the page of one type: its names by locale and
    whether it is required."""

    channel: str
    notification_type: str
    names: Mapping[str, str] = field(default_factory=dict)
    required: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    channel: str
    notification_type: str
    name: str | None  # the catalogue's name in the reader's language, if it has one
    required: bool
    enabled: frozenset[Medium]

    @property
    def topic(self) -> str:
        return f"{self.channel}/{self.notification_type}"


class FormError(ValueError):
    """A form the page never sends (a hand-made request): `field` names what is wrong."""

    def __init__(self, field_name: str) -> None:
        super().__init__(field_name)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class CentreForm:
    topics: tuple[tuple[str, str], ...]
    switched_on: frozenset[tuple[str, str, Medium]]
    quiet_start: str
    quiet_end: str


def name_in(names: Mapping[str, str], chain: Sequence[str]) -> str | None:
    """The name in the first locale of `chain` (the reader's, then its language, then
    the default) that has one."""
    for locale in chain:
        if names.get(locale):
            return names[locale]
    return None


def applying(rows: Iterable[Preference], channel: str, type_: str) -> frozenset[Medium]:
    """The media switched on for (channel, type): those of the most specific row that
    applies, all without one."""
    best = max((row for row in rows if row.applies_to(channel, type_)),
               key=lambda row: row.specificity, default=None)
    if best is None:
        return frozenset(Medium)
    return frozenset(medium for medium in Medium if best.allows(medium))


def listing(entries: Iterable[CatalogueEntry], received: Iterable[tuple[str, str]],
            rows: Sequence[Preference], chain: Sequence[str]) -> list[Line]:
    """The page's lines, sorted by channel then type (`*` first: the defaults)."""
    catalogue = {(e.channel, e.notification_type): e for e in entries}
    keys = set(catalogue) | set(received) | {(r.channel, r.notification_type) for r in rows}
    lines = []
    for channel, type_ in sorted(keys):
        entry = catalogue.get((channel, type_))
        required = bool(entry and entry.required)
        # A required type goes through the user's opt-outs, so every switch shows on: a
        # stored opt-out (the API still takes one) would otherwise show off beside the
        # words "always sent".
        enabled = frozenset(Medium) if required else applying(rows, channel, type_)
        lines.append(Line(channel, type_, name_in(entry.names, chain) if entry else None,
                          required, enabled))
    return lines


def _topic(value: str) -> tuple[str, str]:
    channel, slash, type_ = value.partition("/")
    if not slash or not all(part == WILDCARD or is_name(part) for part in (channel, type_)):
        raise FormError("topic")
    return channel, type_


def parse_form(items: Iterable[tuple[str, str]]) -> CentreForm:
    """The form as the page sends it; `FormError` naming the first field that is not."""
    topics: list[tuple[str, str]] = []
    on: set[tuple[str, str, Medium]] = set()
    quiet = {"quiet_start": "", "quiet_end": ""}
    for key, value in items:
        if key == "topic":
            topics.append(_topic(value))
        elif key in quiet:
            quiet[key] = value.strip()
        elif ":" in key:
            medium, _, topic = key.partition(":")
            if medium not in {m.value for m in MEDIA}:
                raise FormError(key[:120])
            on.add((*_topic(topic), Medium(medium)))
        if len(topics) > MAX_TOPICS:
            raise FormError("topic")
    return CentreForm(tuple(dict.fromkeys(topics)), frozenset(on),
                      quiet["quiet_start"], quiet["quiet_end"])


def changes(form: CentreForm, lines: Sequence[Line],
            rows: Sequence[Preference]) -> list[PreferenceChange]:
    """The rows to write: one per named topic whose switches differ from what applies
    now (an unchanged line writes nothing, so it keeps following the user's defaults);
    required types are left alone."""
    required = {(line.channel, line.notification_type) for line in lines if line.required}
    written = []
    for channel, type_ in form.topics:
        if (channel, type_) in required:
            continue
        wanted = frozenset(m for m in MEDIA if (channel, type_, m) in form.switched_on)
        if wanted == applying(rows, channel, type_):
            continue
        written.append(PreferenceChange(
            channel, type_, email_enabled=Medium.EMAIL in wanted,
            push_enabled=Medium.PUSH in wanted, in_app_enabled=Medium.IN_APP in wanted,
            sms_enabled=Medium.SMS in wanted, chat_enabled=Medium.CHAT in wanted))
    return written
