"""How much one rendering may do, enforced from inside the rendering itself.

A template is code an admin wrote and a producer's variables feed; a render that runs away
(a loop nested in a loop, a string doubled in a loop, a number raised to a huge power)
must stop by itself. Python cannot kill a thread, so a timeout around a render that never
ends would leave the thread spinning for ever: instead every step that can repeat or grow
(a loop iteration, a call, a filter, an arithmetic operator, an output chunk) passes
through `Budget.tick`, which counts steps and checks a deadline, and every value that can
grow is checked before it is built where its size is known in advance (`*`, `**`, widths),
else right after (concatenation, filters). The work between two checks is bounded, so the
deadline is met within a few milliseconds.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tidings.domain.template import MAX_OUTPUT_CHARS

MAX_STEPS = 200_000  # loop iterations, calls, filters and operators in one part
MAX_ITEMS = 10_000  # the length of a range, and of any list a template builds
MAX_CHARS = MAX_OUTPUT_CHARS  # any string a template builds
# Everything a part's template emits, into its output or into the buffers of macros,
# `{% set %}` and `{% filter %}` blocks (whose text is only measured once complete).
MAX_EMITTED = 10 * MAX_OUTPUT_CHARS
MAX_INT_BITS = 4096
MAX_EXPONENT = 256
RENDER_SECONDS = 1.0


class RenderLimit(Exception):
    """The rendering would exceed one of the bounds; the message says which."""


@dataclass
class Budget:
    """The steps and time left to one part's rendering, and in which locale and zone it
    formats (read by the babel filters)."""

    locale: str
    zone: str
    deadline: float = field(default_factory=lambda: time.monotonic() + RENDER_SECONDS)
    steps: int = 0
    emitted: int = 0

    def emit(self, size: int) -> None:
        self.tick()
        self.emitted += size
        if self.emitted > MAX_EMITTED:
            raise RenderLimit(f"rendering stopped: more than {MAX_EMITTED} characters "
                              "written")

    def tick(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise RenderLimit(f"rendering stopped: more than {MAX_STEPS} steps")
        if time.monotonic() > self.deadline:
            raise RenderLimit(f"rendering stopped: it took longer than {RENDER_SECONDS} s")


_current: ContextVar[Budget] = ContextVar("tidings_template_budget")


def current() -> Budget:
    """The budget of the rendering running in this thread (set by `rendering`)."""
    return _current.get()


class rendering:
    """Makes `budget` the current one for the duration of a `with` block."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self._token: Any = None

    def __enter__(self) -> Budget:
        self._token = _current.set(self._budget)
        return self._budget

    def __exit__(self, *_exc: object) -> None:
        _current.reset(self._token)


# A printf conversion with a width or precision of 4+ digits, or one taken from `*`.
_WIDE_FORMAT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{4,}|\d*\.(?:\*|\d{4,}))")


def narrow_format(text: str) -> None:
    """Refuse a printf format whose widths could build a huge string."""
    if _WIDE_FORMAT.search(text):
        raise RenderLimit("rendering stopped: a format width or precision of 1000 or more")


def sized(value: Any) -> Any:
    """`value`, if no string or list a template built is over its bound."""
    if isinstance(value, str) and len(value) > MAX_CHARS:
        raise RenderLimit(f"rendering stopped: a text longer than {MAX_CHARS} characters")
    if isinstance(value, list | tuple | dict) and len(value) > MAX_ITEMS:
        raise RenderLimit(f"rendering stopped: a list longer than {MAX_ITEMS} items")
    if isinstance(value, int) and not isinstance(value, bool) and (
        value.bit_length() > MAX_INT_BITS
    ):
        raise RenderLimit(f"rendering stopped: a number larger than {MAX_INT_BITS} bits")
    return value


def product_size(left: Any, right: Any) -> None:
    """Refuse `left * right` before it is built if the product is over a bound."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            limit = MAX_CHARS if isinstance(seq, str) else MAX_ITEMS
            if len(seq) * max(times, 0) > limit:
                raise RenderLimit(f"rendering stopped: a repetition longer than {limit}")
            return
    if isinstance(left, int) and isinstance(right, int) and (
        left.bit_length() + right.bit_length() > MAX_INT_BITS
    ):
        raise RenderLimit(f"rendering stopped: a number larger than {MAX_INT_BITS} bits")


def power_size(base: Any, exponent: Any) -> None:
    """Refuse `base ** exponent` before it is computed if the result is over a bound."""
    if isinstance(exponent, int | float) and abs(exponent) > MAX_EXPONENT:
        raise RenderLimit(f"rendering stopped: an exponent above {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and (
        base.bit_length() * exponent > MAX_INT_BITS
    ):
        raise RenderLimit(f"rendering stopped: a number larger than {MAX_INT_BITS} bits")


def sum_size(left: Any, right: Any) -> None:
    """Refuse `left + right` on strings or lists before it is built if over a bound."""
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_CHARS:
            raise RenderLimit(f"rendering stopped: a text longer than {MAX_CHARS} characters")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple) and (
        len(left) + len(right) > MAX_ITEMS
    ):
        raise RenderLimit(f"rendering stopped: a list longer than {MAX_ITEMS} items")
