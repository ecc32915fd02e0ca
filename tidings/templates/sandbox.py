"""The Jinja2 environment templates run in: sandboxed, immutable, strict about undefined
names, and bounded (see `bounds.py`).

On top of Jinja2's sandbox (no attribute starting with `_`, no `mro`, no function
internals, no mutation of lists and dicts), this one:
- rewrites every parsed template so that each `for` loop's iterable, each `~`
  concatenation, each list, tuple and dict literal and each piece of output (literal text
  too: a macro or a `{% set %}` block buffers its output before anything measures it)
  pass through a counting filter (`_parse`);
- counts every call (macros included) and checks `+`, `*`, `**` and `%` before computing
  (`operators.py`);
- replaces `range` with one of at most `MAX_ITEMS` items, drops `lipsum`, gives
  `namespace` objects a text form that does not show what they hold (a namespace is the
  one thing a template can change after it was measured), and allows on built-in values
  only the methods that cannot grow them (`str.format`, `center`, `ljust`, `replace`,
  `join`, `int.to_bytes`, `dict.fromkeys`, ... are refused: the filters of those names
  are bounded instead).

It also bounds compiling: a part is at most `MAX_TOKENS` tokens (`_tokenize`). Lexing,
parsing and generating Python are pure Python, which lets other threads run every few
milliseconds; the last step, Python's `compile()` of the generated module, is one C call
that holds the GIL (stalling the event loop) for a time proportional to the code, about
5-15 us per token (up to 1.2 s for a 64 KB part). Counting tokens as the parser pulls them
stops a long part before any code is generated, so no compile holds the GIL for more than
about 50 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from jinja2 import StrictUndefined, TemplateRuntimeError, UndefinedError, nodes
from jinja2.lexer import Token, TokenStream
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing
from jinja2.visitor import NodeTransformer

from tidings.templates import operators
from tidings.templates.bounds import MAX_ITEMS, RenderLimit, current, sized, too_large
from tidings.templates.filters import bounded_filters, capped_dumps, locale_filters

LOOP_FILTER = "tidings_loop"
SIZE_FILTER = "tidings_sized"
EMIT_FILTER = "tidings_emit"
PART_FILTER = "tidings_part"
# Names, literals, operators and tag delimiters in one part (a run of text between tags
# is one token): `{{ user.name }}` is five. Python compiles the code of the worst kind
# (`{{ a ~ b ~ ... }}`) at about 15 us per token; ordinary templates use a few hundred.
MAX_TOKENS = 3_000
SAFE_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
    "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper",
    "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rindex",
    "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
    "swapcase", "title", "upper",
})
# The methods a template may call on built-in values: those whose result is no larger
# than the value (`int.to_bytes(10**9)` would allocate a gigabyte before any check).
SAFE_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, SAFE_STR_METHODS),
    ((int, float), frozenset({"as_integer_ratio", "bit_count", "bit_length", "conjugate",
                              "is_integer"})),
    ((list, tuple, range), frozenset({"count", "index", "copy"})),
    (dict, frozenset({"copy", "get", "items", "keys", "values"})),
)


class Uncompilable(Exception):
    """A source Jinja2 cannot turn into code within the bounds: too long, or nested past
    Python's limits."""


class MissingVariable(UndefinedError):
    """A top-level name the variables do not hold was used."""

    def __init__(self, message: str | None = None, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class Undefined(StrictUndefined):
    """StrictUndefined: any use of a missing name fails; a missing top-level variable
    raises `MissingVariable`, naming it."""

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None,
                 exc: type[TemplateRuntimeError] = UndefinedError) -> None:
        if obj is missing and name and exc is UndefinedError:
            exc = partial(MissingVariable, name=name)  # type: ignore[assignment]
        super().__init__(hint, obj, name, exc)


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current()
    for item in iterable:
        budget.tick()
        yield item


def _sized(value: Any) -> Any:
    current().tick()
    return sized(value)


def _part(value: Any) -> Any:
    # What the operand will take in the concatenation's text, allocated before the
    # result can be measured.
    budget = current()
    budget.tick()
    if isinstance(value, str):
        budget.allocate(len(value))
    else:
        size = budget.measure(value)
        too_large(size)
        budget.allocate(size)
    return value


def _emit(value: Any) -> Any:
    current().emit(len(value) if isinstance(value, str) else len(str(value)))
    return value


def _capped(stream: TokenStream) -> Iterator[Token]:
    """The tokens of `stream`, refused past `MAX_TOKENS` (lazily: the parser pulls them,
    so it stops there too)."""
    for count, token in enumerate(stream, 1):
        if count > MAX_TOKENS:
            raise Uncompilable(f"the template is too long to compile: more than "
                               f"{MAX_TOKENS} tokens (names, literals, operators and tag "
                               f"delimiters; text between tags counts as one), at line "
                               f"{token.lineno}")
        yield token


class _Namespace(Namespace):
    """`namespace()`: its attributes can change after a list that holds it was measured
    (`[ns] * 1000`, then `{% set ns.x = big %}`), so its text form does not show them."""

    def __repr__(self) -> str:
        return "<namespace>"


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_ITEMS:
        raise RenderLimit(f"rendering stopped: a range of more than {MAX_ITEMS} items")
    return numbers


class _Counted(NodeTransformer):
    """Routes loop iterables, concatenations and literals through the counting filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None,
                                 lineno=node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [nodes.Filter(child, EMIT_FILTER, [], [], None, None, lineno=child.lineno)
                      for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        # Each operand is counted before any is converted to text: `a ~ a ~ ...` would
        # otherwise hold thousands of copies of `str(a)` before the result is measured.
        node.nodes = [nodes.Filter(child, PART_FILTER, [], [], None, None,
                                   lineno=child.lineno) for child in node.nodes]
        return _measured(node)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        # `[big, big, big]` and their nesting would multiply sizes without an operator.
        self.generic_visit(node)
        return _measured(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _measured(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        # A tuple that is assigned to (`{% for k, v in ... %}`) builds nothing.
        return _measured(node) if node.ctx == "load" else node


def _measured(node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, SIZE_FILTER, [], [], None, None, lineno=node.lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """One instance per autoescape mode; shared by all renderings (it holds no state of
    a rendering: that is the current `Budget`)."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=Undefined, cache_size=0,
                         auto_reload=False)
        self.globals.pop("lipsum", None)
        self.globals["range"] = _range
        self.globals["namespace"] = _Namespace
        self.policies["json.dumps_function"] = capped_dumps
        self.filters.update(bounded_filters(self.filters))
        self.filters.update(locale_filters())
        self.filters[LOOP_FILTER] = _loop
        self.filters[SIZE_FILTER] = _sized
        self.filters[EMIT_FILTER] = _emit
        self.filters[PART_FILTER] = _part

    def _tokenize(self, source: str, name: str | None, filename: str | None = None,
                  state: str | None = None) -> TokenStream:
        stream = super()._tokenize(source, name, filename, state)
        return TokenStream(_capped(stream), name, filename)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        counted = _Counted().visit(tree)
        assert isinstance(counted, nodes.Template)
        return counted

    def wrap_str_format(self, value: Any) -> None:
        """`str.format` and `format_map` are refused like other growing methods (the
        sandbox would otherwise hand out a wrapped version before asking
        `is_safe_attribute`); the `format` filter remains."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if callable(value):
            for kind, methods in SAFE_METHODS:
                if isinstance(obj, kind):
                    if attr not in methods:
                        return False
                    break
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: Context, __obj: Any,
             *args: Any, **kwargs: Any) -> Any:
        current().tick()
        operators.arguments_size(args, kwargs)
        return sized(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current().tick()
        size: int | None = None
        if operator == "*":
            size = operators.product_size(left, right)
        elif operator == "**":
            operators.power_size(left, right)
        elif operator == "+":
            size = operators.sum_size(left, right)
        elif operator == "%" and isinstance(left, str):
            operators.format_size(left, right)
        return sized(super().call_binop(context, operator, left, right), size)
