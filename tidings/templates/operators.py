"""The checks an operator's result passes before it is built, where its size is known in
advance: `*`, `**`, `+` on strings and lists, `%` and the `format` filter (their widths),
and a call's arguments. The sandbox (`sandbox.py`) calls them for every operator; the
bounds they enforce are `bounds.py`'s."""

from __future__ import annotations

import re
from typing import Any

from tidings.templates.bounds import (
    MAX_CHARS,
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_SIZE,
    RenderLimit,
    current,
    size_of,
)

# A printf conversion with a width or precision of 4+ digits, or one taken from `*`.
_WIDE_FORMAT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{4,}|\d*\.(?:\*|\d{4,}))")


def narrow_format(text: str) -> None:
    """Refuse a printf format whose widths could build a huge string."""
    if _WIDE_FORMAT.search(text):
        raise RenderLimit("rendering stopped: a format width or precision of 1000 or more")


def arguments_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call whose arguments are together over `MAX_SIZE`: a macro shows them as
    `varargs` and `kwargs`, `cycler` as `items`, so `m(big, big, ...)` would build
    a value no operator measured."""
    if (args or kwargs) and size_of((args, kwargs)) > MAX_SIZE:
        raise RenderLimit(f"rendering stopped: the arguments of a call are larger than "
                          f"{MAX_SIZE} characters (as text)")


def product_size(left: Any, right: Any) -> int | None:
    """Refuse `left * right` before it is built if the product is over a bound: in
    length, and for lists in deep size (`[big] * 100` is short but walks `big` 100 times
    wherever it is compared or written). The deep size of a list product, else None."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            limit = MAX_CHARS if isinstance(seq, str) else MAX_ITEMS
            if len(seq) * max(times, 0) > limit:
                raise RenderLimit(f"rendering stopped: a repetition longer than {limit}")
            if isinstance(seq, str):
                return None
            size = current().measure(seq) * max(times, 1)
            if size > MAX_SIZE:
                raise RenderLimit(f"rendering stopped: a repetition larger than {MAX_SIZE} "
                                  "characters (as text)")
            return size
    if isinstance(left, int) and isinstance(right, int) and (
        left.bit_length() + right.bit_length() > MAX_INT_BITS
    ):
        raise RenderLimit(f"rendering stopped: a number larger than {MAX_INT_BITS} bits")
    return None


def power_size(base: Any, exponent: Any) -> None:
    """Refuse `base ** exponent` before it is computed if the result is over a bound."""
    if isinstance(exponent, int | float) and abs(exponent) > MAX_EXPONENT:
        raise RenderLimit(f"rendering stopped: an exponent above {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and (
        base.bit_length() * exponent > MAX_INT_BITS
    ):
        raise RenderLimit(f"rendering stopped: a number larger than {MAX_INT_BITS} bits")


def format_size(template: str, arguments: Any) -> None:
    """Refuse `template % arguments` (and the `format` filter) before it is built if each
    conversion writing all of `arguments` could take it over `MAX_CHARS`."""
    narrow_format(template)
    conversions = template.count("%")
    if conversions and len(template) + conversions * size_of(arguments, MAX_CHARS) > MAX_CHARS:
        raise RenderLimit(f"rendering stopped: a format that could write more than "
                          f"{MAX_CHARS} characters")


def sum_size(left: Any, right: Any) -> int | None:
    """Refuse `left + right` on strings or lists before it is built if over a bound. The
    deep size of a list sum (from what was measured before: a list built item by item
    in a loop is not walked again at each item), else None."""
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_CHARS:
            raise RenderLimit(f"rendering stopped: a text longer than {MAX_CHARS} characters")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        if len(left) + len(right) > MAX_ITEMS:
            raise RenderLimit(f"rendering stopped: a list longer than {MAX_ITEMS} items")
        budget = current()
        return budget.measure(left) + budget.measure(right)
    return None
