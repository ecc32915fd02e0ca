"""How much one rendering may do, enforced from inside the rendering itself.

A template is code an admin wrote and a producer's variables feed; a render that runs away
(a loop nested in a loop, a string doubled in a loop, a number raised to a huge power)
must stop by itself. Python cannot kill a thread, so a timeout around a render that never
ends would leave the thread spinning for ever: instead every step that can repeat or grow
(a loop iteration, a call, a filter, an arithmetic operator, an output chunk) passes
through `Budget.tick`, which counts steps and checks a deadline, and every value that can
grow is checked before it is built where its size is known in advance (`*`, `**`, `%`,
widths: `operators.py`), else right after (concatenation, filters). The work between two checks is
bounded, so the deadline is met within a few milliseconds.

Counting steps is not enough on its own: one step can be a single C call that runs for
seconds with the GIL held (stalling the event loop too), such as `==`, `in`, `str()` or
`tojson` over a list that holds one large list ten thousand times. So the size that is
bounded is a value's *deep* size (`size_of`: about the length of its text form, a shared
item counted wherever it appears, as `==`, `str` and JSON see it), not its length. Every
value a template builds is measured so, and the operators that could multiply it are
checked before they run. As every value a template holds is then bounded, so is every
single operation on it: comparisons and `in` need no check of their own.

Memory is counted apart from size: the bytes of every string and container a rendering
builds add up (`MAX_BUILT`), so that many medium-sized values (two thousand `{% set %}`
of 100 KB each) cannot take what one large one may not. A list that shares one large
item a hundred times is large in size but small in memory; each bound sees its own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from tidings.domain.template import MAX_OUTPUT_CHARS

MAX_STEPS = 200_000  # loop iterations, calls, filters and operators in one part
MAX_ITEMS = 10_000  # the length of a range, and of any list a template builds
MAX_CHARS = MAX_OUTPUT_CHARS  # any string a template builds
# Everything a part's template emits, into its output or into the buffers of macros,
# `{% set %}` and `{% filter %}` blocks (whose text is only measured once complete).
MAX_EMITTED = 10 * MAX_OUTPUT_CHARS
# The deep size of any one value a template builds (see `size_of`): what one operation
# on it may walk through.
MAX_SIZE = 1_000_000
# The bytes of all the strings and containers one part's rendering builds, kept or not
# (a list built one item at a time in a loop copies it at each item: about 2,500 items).
MAX_BUILT = 32 * 1024 * 1024
# Containers measured that a rendering remembers (and so keeps alive).
MAX_KNOWN = 1024
MAX_INT_BITS = 4096
MAX_EXPONENT = 256
RENDER_SECONDS = 1.0


# Containers a rendering measured: id -> (the container, its deep size).
Known = dict[int, tuple[Any, int]]


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
    built: int = 0
    known: Known = field(default_factory=dict)

    def emit(self, size: int) -> None:
        self.tick()
        self.emitted += size
        if self.emitted > MAX_EMITTED:
            raise RenderLimit(f"rendering stopped: more than {MAX_EMITTED} characters "
                              "written")

    def allocate(self, size: int) -> None:
        """Count `size` bytes the template built."""
        self.built += size
        if self.built > MAX_BUILT:
            raise RenderLimit(f"rendering stopped: more than {MAX_BUILT} bytes of values "
                              "built")

    def measure(self, value: Any) -> int:
        """`size_of(value)`, from and into what this rendering measured before."""
        size = size_of(value, MAX_SIZE, known=self.known)
        self.remember(value, size)
        return size

    def remember(self, value: Any, size: int) -> None:
        # Only containers large enough to be worth it, and not too many: the entries
        # keep them alive.
        if isinstance(value, _CONTAINERS) and len(value) >= 16 and size <= MAX_SIZE:
            if len(self.known) >= MAX_KNOWN:
                self.known.clear()
            self.known[id(value)] = (value, size)

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


def size_of(value: Any, limit: int = MAX_SIZE, *, nested: bool = False,
            known: Known | None = None) -> int:
    """About the length of `value`'s text form (`str`, JSON), an item counted wherever it
    appears: what `==`, `in`, `str` and `tojson` walk through. Counting stops once past
    `limit`, so the cost is bounded by it (every item counts at least 2) whatever the value.

    `known` holds containers already measured (by id, with the container itself so the
    id stays its own): a template cannot change a list or dict, so their size stands,
    and `ns.items + [item]` in a loop costs the new item, not the whole list again.

    With `nested`, each item counts once per level it is nested in: the work of
    `pprint`, which formats every level's items again to see if they fit on a line.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and total <= limit:
        item, depth = stack.pop()
        weight = depth if nested else 1
        own = _scalar_size(item)
        if own is not None:
            total += own * weight
            continue
        seen = known.get(id(item)) if known is not None else None
        if seen is not None and seen[0] is item:
            total += seen[1]
            continue
        pairs = isinstance(item, dict | ItemsView)
        total += ((4 if pairs else 2) * len(item) + 2) * weight
        if total > limit:
            break
        children = (chain.from_iterable(item.items() if isinstance(item, dict) else item)
                    if pairs else item)
        weight = depth + 1 if nested else 1
        for child in children:
            kind = type(child)
            # The common items inline: this loop is the cost of every measure.
            if kind is str:
                total += (len(child) + 2) * weight
            elif kind is int:
                total += (child.bit_length() // 3 + 2) * weight
            else:
                size = _scalar_size(child)
                if size is None:
                    stack.append((child, depth + 1))
                else:
                    total += size * weight
    return total


_CONTAINERS = (list, tuple, dict, set, frozenset, KeysView, ValuesView, ItemsView)


def _scalar_size(item: Any) -> int | None:
    """The size of a value that holds no others (None for a container)."""
    if isinstance(item, str):
        return len(item) + 2
    if item is None or isinstance(item, bool | float):
        return 5
    if isinstance(item, range):
        digits = len(str(max(abs(item.start), abs(item.stop))))
        return len(item) * (digits + 2) + 2
    if isinstance(item, int):
        return item.bit_length() // 3 + 2
    if isinstance(item, _CONTAINERS):
        return None
    # Dates, decimals and the sandbox's own objects (a namespace, a cycler, a loop),
    # whose text form is short and does not show what they hold.
    return 16


def sized(value: Any, size: int | None = None) -> Any:
    """`value`, a result of the template's code, if it is within every bound; counted as
    built by the current rendering (`size`: its deep size, where the caller knows it).
    An iterator is handed on as one that counts its items."""
    if isinstance(value, str):
        if len(value) > MAX_CHARS:
            raise RenderLimit(f"rendering stopped: a text longer than {MAX_CHARS} characters")
        current().allocate(sys.getsizeof(value))
        return value
    if isinstance(value, list | tuple | dict) and len(value) > MAX_ITEMS:
        raise RenderLimit(f"rendering stopped: a list longer than {MAX_ITEMS} items")
    if isinstance(value, int) and not isinstance(value, bool) and (
        value.bit_length() > MAX_INT_BITS
    ):
        raise RenderLimit(f"rendering stopped: a number larger than {MAX_INT_BITS} bits")
    if isinstance(value, Iterator):
        return _counted(value)
    if isinstance(value, _CONTAINERS):
        budget = current()
        if size is None:
            size = budget.measure(value)
        else:
            budget.remember(value, size)
        too_large(size)
        budget.allocate(sys.getsizeof(value))
    return value


def too_large(size: int) -> None:
    """Refuse a value of deep size `size` over `MAX_SIZE`."""
    if size > MAX_SIZE:
        raise RenderLimit(f"rendering stopped: a value larger than {MAX_SIZE} characters "
                          "(as text)")


def _counted(items: Iterator[Any]) -> Iterator[Any]:
    """The items of a lazy result (`map`, `select`, `batch`, ...), refused once together
    over `MAX_SIZE`: whatever collects them stays bounded. (What a filter that `map`
    calls builds is counted by that filter.)"""
    budget = current()
    total = 0
    for item in items:
        budget.tick()
        total += budget.measure(item)
        if total > MAX_SIZE:
            raise RenderLimit(f"rendering stopped: a sequence larger than {MAX_SIZE} "
                              "characters (as text)")
        yield item
