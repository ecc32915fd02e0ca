"""Filters of the template language: Jinja2's own, bounded, and the locale-aware ones.

Every standard filter counts as a step and has its result's size checked; those whose
output an argument can blow up (`center(10**9)`, `replace("", long)`, `join` of long
items, `batch`, `slice`, `indent`, `wordwrap`, `format`, `urlize`, `pprint`) are checked
before they run, `tojson` as it writes, and `sum` of lists is built in one pass (Python's
adds them one by one: quadratic). `date`, `datetime`, `number` and `currency` format
with babel in the locale and zone of the current rendering (the recipient's).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, pass_environment
from jinja2.filters import make_attrgetter

from tidings.templates.bounds import (
    MAX_CHARS,
    MAX_ITEMS,
    MAX_SIZE,
    RenderLimit,
    current,
    size_of,
    sized,
)
from tidings.templates.operators import format_size

_CONTEXTS = frozenset({"environment", "eval_ctx", "context"})
Estimate = Callable[[Mapping[str, Any]], int]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else _int(value)


def _replace_size(a: Mapping[str, Any]) -> int:
    text, old, new = _text(a["s"]), _text(a["old"]), _text(a["new"])
    hits = text.count(old) if old else len(text) + 1
    if isinstance(a.get("count"), int) and a["count"] >= 0:
        hits = min(hits, a["count"])
    return len(text) + hits * max(0, len(new) - len(old))


def _indent_size(a: Mapping[str, Any]) -> int:
    text = _text(a["s"])
    return len(text) + (text.count("\n") + 1) * _width(a.get("width", 4))


def _wordwrap_size(a: Mapping[str, Any]) -> int:
    text, width = _text(a["s"]), max(_int(a.get("width", 79)), 1)
    wrap = a.get("wrapstring") or "\n"
    return len(text) + (len(text) // width + 1) * len(_text(wrap))


def _format_size(a: Mapping[str, Any]) -> int:
    format_size(_text(a["value"]), (a.get("args"), a.get("kwargs")))
    return 0


def _urlize_size(a: Mapping[str, Any]) -> int:
    # A link is its text twice plus the attributes; only a word with `.`, `@` or `:`
    # can be one.
    text = _text(a["value"])
    links = text.count(".") + text.count("@") + text.count(":")
    extra = sum(len(_text(a.get(name) or "")) for name in ("target", "rel"))
    return 3 * len(text) + links * (extra + 64)


def _pprint_size(a: Mapping[str, Any]) -> int:
    # pformat formats each level's items again to see whether they fit on a line.
    return size_of(a["value"], MAX_SIZE, nested=True) // 4


# Filter -> an upper bound of its output's length, from its bound arguments.
ESTIMATES: dict[str, Estimate] = {
    "center": lambda a: max(len(_text(a["value"])), _int(a.get("width", 80))),
    "replace": _replace_size,
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "format": _format_size,
    "urlize": _urlize_size,
    "pprint": _pprint_size,
    "batch": lambda a: _int(a["linecount"]) * (MAX_CHARS // MAX_ITEMS),
    "slice": lambda a: _int(a["slices"]) * (MAX_CHARS // MAX_ITEMS),
    # An indent is built once per level: at most 16 (the output is measured as written).
    "tojson": lambda a: _width(a.get("indent")) * (MAX_CHARS // 16),
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
    # Measured, not converted: `str()` of each item is the very work to be bounded.
    items = a["value"]
    size = len(_text(a.get("d", ""))) * len(items)
    for item in items:
        size += len(item) if isinstance(item, str) else size_of(item, MAX_CHARS)
        if size > MAX_CHARS:
            break
    return size


def bounded_filters(standard: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Every standard filter, counted and size-checked, `sum` replaced."""
    bounded = {name: _bounded(name, function) for name, function in standard.items()}
    bounded["sum"] = _bounded("sum", sum_filter)
    return bounded


def capped_dumps(value: Any, **options: Any) -> str:
    """`json.dumps` for `tojson` (Jinja2's `json.dumps_function` policy) that stops once
    past `MAX_CHARS`: its size depends on the indent and the nesting, so it is measured as
    it is written rather than estimated."""
    chunks: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(**options).iterencode(value):
        size += len(chunk)
        if size > MAX_CHARS:
            raise RenderLimit(f"rendering stopped: tojson would build more than "
                              f"{MAX_CHARS} characters")
        chunks.append(chunk)
    return "".join(chunks)


@pass_environment
def sum_filter(environment: Environment, iterable: Iterable[Any],
               attribute: str | int | None = None, start: Any = 0) -> Any:
    """Jinja2's `sum`, with lists and tuples joined in one pass: Python's `sum` copies the
    total so far at each item, which is quadratic within a single step."""
    items: Iterable[Any] = iterable
    if attribute is not None:
        items = map(make_attrgetter(environment, attribute), iterable)
    items = _listed(items)
    if not isinstance(start, list | tuple):
        if any(isinstance(item, list | tuple) for item in items):
            raise TypeError("sum of lists needs a list or tuple start, e.g. start=[]")
        return sum(items, start)
    kind = type(start)
    if not all(type(item) is kind for item in items):
        raise TypeError(f"sum(start={kind.__name__}()) can only add {kind.__name__}s")
    if len(start) + sum(len(item) for item in items) > MAX_ITEMS:
        raise RenderLimit(f"rendering stopped: a list longer than {MAX_ITEMS} items")
    return kind(chain(start, *items))


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
