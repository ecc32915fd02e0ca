"""Filters of the template language: Jinja2's own, bounded, and the locale-aware ones.

Every standard filter counts as a step and has its result's size checked; those whose
output an argument can blow up (`center(10**9)`, `replace("", long)`, `join` of long
items, `batch`, `slice`, `indent`, `wordwrap`, `format`, `tojson`) are checked before
they run. `date`, `datetime`, `number` and `currency` format with babel in the locale and
zone of the current rendering (the recipient's).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

from tidings.templates.bounds import (
    MAX_CHARS,
    MAX_ITEMS,
    RenderLimit,
    current,
    narrow_format,
    sized,
)

_CONTEXTS = frozenset({"environment", "eval_ctx", "context"})
Estimate = Callable[[Mapping[str, Any]], int]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _replace_size(a: Mapping[str, Any]) -> int:
    text, old, new = _text(a["s"]), _text(a["old"]), _text(a["new"])
    hits = text.count(old) if old else len(text) + 1
    if isinstance(a.get("count"), int) and a["count"] >= 0:
        hits = min(hits, a["count"])
    return len(text) + hits * max(0, len(new) - len(old))


def _indent_size(a: Mapping[str, Any]) -> int:
    text, width = _text(a["s"]), a.get("width", 4)
    step = len(width) if isinstance(width, str) else _int(width)
    return len(text) + (text.count("\n") + 1) * step


def _wordwrap_size(a: Mapping[str, Any]) -> int:
    text, width = _text(a["s"]), max(_int(a.get("width", 79)), 1)
    wrap = a.get("wrapstring") or "\n"
    return len(text) + (len(text) // width + 1) * len(_text(wrap))


def _format_size(a: Mapping[str, Any]) -> int:
    narrow_format(_text(a["value"]))
    return 0


# Filter -> an upper bound of its output's length, from its bound arguments.
ESTIMATES: dict[str, Estimate] = {
    "center": lambda a: max(len(_text(a["value"])), _int(a.get("width", 80))),
    "replace": _replace_size,
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "format": _format_size,
    "batch": lambda a: _int(a["linecount"]) * (MAX_CHARS // MAX_ITEMS),
    "slice": lambda a: _int(a["slices"]) * (MAX_CHARS // MAX_ITEMS),
    "tojson": lambda a: _int(a.get("indent")) * (MAX_CHARS // 16),
}


def _bounded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(function)
    # Jinja2's async-capable filters take the evaluation context through a wrapper that
    # the signature of the wrapped function does not show: skip it when binding.
    first = next(iter(signature.parameters), "")
    skip = 1 if getattr(function, "jinja_pass_arg", None) and first not in _CONTEXTS else 0
    estimate = ESTIMATES.get(name)

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        current().tick()
        if name == "join":
            args = (*args[:1], _listed(args[1]), *args[2:])
        if estimate is not None or name == "join":
            bound = signature.bind(*args[skip:], **kwargs)
            size = estimate(bound.arguments) if estimate else _join_size(bound.arguments)
            if size > MAX_CHARS:
                raise RenderLimit(f"rendering stopped: {name} would build more than "
                                  f"{MAX_CHARS} characters")
        return sized(function(*args, **kwargs))

    return run


def _listed(value: Any) -> Any:
    if isinstance(value, str | dict):
        return value
    items = []
    for item in value:
        items.append(item)
        if len(items) > MAX_ITEMS:
            raise RenderLimit(f"rendering stopped: a list longer than {MAX_ITEMS} items")
    return items


def _join_size(a: Mapping[str, Any]) -> int:
    items = a["value"]
    return sum(len(_text(item)) for item in items) + len(_text(a.get("d", ""))) * len(items)


def bounded_filters(standard: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Every standard filter, counted and size-checked."""
    return {name: _bounded(name, function) for name, function in standard.items()}


# -- locale-aware ---------------------------------------------------------------------------

def _instant(value: Any) -> datetime | date:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    try:
        text = _text(value).replace("Z", "+00:00")
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a date or time: {value!r}") from exc


def _zoned(value: datetime) -> datetime:
    """An instant (naive ones are UTC) in the current rendering's zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(current().zone))


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(_text(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not number.is_finite() or abs(number.adjusted()) > 100:
        raise ValueError(f"not a number that can be shown: {value!r}")
    return number


def date_filter(value: Any, format: str = "medium") -> str:
    current().tick()
    instant = _instant(value)
    day = _zoned(instant).date() if isinstance(instant, datetime) else instant
    return format_date(day, format=format, locale=current().locale)


def datetime_filter(value: Any, format: str = "medium") -> str:
    current().tick()
    instant = _instant(value)
    if not isinstance(instant, datetime):
        instant = datetime(instant.year, instant.month, instant.day, tzinfo=UTC)
    return format_datetime(_zoned(instant), format=format, locale=current().locale)


def number_filter(value: Any, format: str | None = None) -> str:
    current().tick()
    return format_decimal(_decimal(value), format=format, locale=current().locale)


def currency_filter(value: Any, currency: str = "USD",
                    format: str | None = None) -> str:
    current().tick()
    return format_currency(_decimal(value), currency, format=format, locale=current().locale)


def locale_filters() -> dict[str, Callable[..., str]]:
    return {"date": date_filter, "datetime": datetime_filter, "number": number_filter,
            "currency": currency_filter}
