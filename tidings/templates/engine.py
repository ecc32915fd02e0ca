"""Checking and rendering templates: syntax errors and render failures become 422s that
name the variant and part (or the missing variable).

Rendering is CPU work: `render_many` runs a whole request's renderings in one worker
thread, off the event loop. Every rendering is bounded by its own `Budget`, so the thread
always ends (see `bounds.py` for why no timeout is put around it instead).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from tidings.domain.errors import ValidationFailed
from tidings.domain.template import MAX_OUTPUT_CHARS, PARTS, Rendered, Template
from tidings.templates.bounds import Budget, RenderLimit, rendering
from tidings.templates.sandbox import BoundedSandbox, MissingVariable, Uncompilable

COMPILED_CACHE = 512


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a rendering is for: the recipient's locale (None: the template's default) and
    zone (None: UTC)."""

    locale: str | None
    zone: str | None


class TemplateEngine:
    """Holds the two environments (plain text, and autoescaped HTML) and a cache of
    compiled parts; renderings share nothing else."""

    def __init__(self) -> None:
        self._text = BoundedSandbox(autoescape=False)
        self._html = BoundedSandbox(autoescape=True)
        self._compiled: OrderedDict[tuple[bool, str], JinjaTemplate] = OrderedDict()

    def check(self, variants: Mapping[str, Mapping[str, str]]) -> None:
        """Compile every part; a syntax error is a 422 naming `variants.<locale>.<part>`
        with the line in the message."""
        for locale, parts in variants.items():
            for part, source in parts.items():
                field = f"variants.{locale}.{part}"
                try:
                    self._compile(part, source)
                except TemplateSyntaxError as exc:
                    raise ValidationFailed(f"{field}: line {exc.lineno}: {exc.message}",
                                           field=field) from exc
                except Uncompilable as exc:
                    raise ValidationFailed(f"{field}: {exc}", field=field) from exc

    async def render_many(
        self, template: Template, variables: Mapping[str, Any], audiences: Sequence[Audience]
    ) -> dict[Audience, Rendered]:
        """One rendering per audience, all in one worker thread."""
        return await asyncio.to_thread(self._render_all, template, variables, audiences)

    def _render_all(self, template: Template, variables: Mapping[str, Any],
                    audiences: Sequence[Audience]) -> dict[Audience, Rendered]:
        return {audience: self.render(template, variables, audience) for audience in audiences}

    def render(self, template: Template, variables: Mapping[str, Any],
               audience: Audience) -> Rendered:
        """Render the variant chosen for `audience` (synchronously: call it from a worker
        thread)."""
        locale = template.variant_for(audience.locale)
        # Babel formats in the recipient's own locale (de_AT), not the variant's (de).
        formatting = audience.locale or locale
        parts: dict[str, str] = {}
        for part, source in template.sources_for(locale).items():
            field = f"variants.{locale}.{part}"
            parts[part] = self._render_part(part, source, variables, field,
                                            (formatting, audience.zone or "UTC"))
        return Rendered(template.key, template.version, locale,
                        {part: parts[part] for part in PARTS if part in parts})

    def _render_part(self, part: str, source: str, variables: Mapping[str, Any],
                     field: str, formatting: tuple[str, str]) -> str:
        try:
            compiled = self._compile(part, source)
            # The deadline starts once compiled: a large part's first compile (after a
            # restart, or once out of the cache) must not eat its rendering's second.
            budget = Budget(locale=formatting[0], zone=formatting[1])
            with rendering(budget):
                return _collect(compiled, variables, budget)
        except UndefinedError as exc:
            raise _undefined(exc, field) from exc
        except TemplateSyntaxError as exc:
            raise ValidationFailed(f"{field}: line {exc.lineno}: {exc.message}",
                                   field=field) from exc
        except Uncompilable as exc:
            raise ValidationFailed(f"{field}: {exc}", field=field) from exc
        except Exception as exc:
            # Whatever a template's own code raises (a bound, the sandbox, a filter given
            # a bad value, a division by zero) is that template's failure: a 422 naming
            # the part, never a 500.
            raise ValidationFailed(f"{field}: {_describe(exc)}", field=field) from exc

    def _compile(self, part: str, source: str) -> JinjaTemplate:
        html = part == "html"
        key = (html, source)
        found = self._compiled.get(key)
        if found is not None:
            self._compiled.move_to_end(key)
            return found
        try:
            compiled = (self._html if html else self._text).from_string(source)
        except RecursionError as exc:
            # Jinja2's parser and the passes over its tree recurse once per level of
            # brackets, filters, operators and blocks.
            raise Uncompilable("the template is nested too deeply to compile (brackets, "
                               "filters, operators or blocks)") from exc
        except SyntaxError as exc:
            # Python's own limits on the code Jinja2 generates: 20 nested loops or
            # blocks, 100 levels of indentation.
            raise Uncompilable(f"the template is nested too deeply to compile ({exc.msg})"
                               ) from exc
        self._compiled[key] = compiled
        if len(self._compiled) > COMPILED_CACHE:
            self._compiled.popitem(last=False)
        return compiled


def _collect(compiled: JinjaTemplate, variables: Mapping[str, Any], budget: Budget) -> str:
    chunks: list[str] = []
    size = 0
    for chunk in compiled.generate(dict(variables)):
        budget.tick()
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"rendering stopped: the part is longer than "
                              f"{MAX_OUTPUT_CHARS} characters")
        chunks.append(chunk)
    text = "".join(chunks)
    if "\x00" in text:
        raise ValueError("the rendered text contains the NUL character")
    return text


def _undefined(exc: UndefinedError, field: str) -> ValidationFailed:
    """A missing top-level variable names `variables.<name>`; anything else undefined
    (a missing key of a given object, an unsafe attribute) names the part."""
    if isinstance(exc, MissingVariable):
        name = exc.name
        return ValidationFailed(f"variables.{name}: the template needs this variable",
                                field=f"variables.{name}")
    return ValidationFailed(f"{field}: {exc.message}", field=field)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, RecursionError):
        return "rendering stopped: calls nested too deeply"
    return str(exc) or type(exc).__name__
