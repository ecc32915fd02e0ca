"""The template engine on its own: the sandbox, the bounds, the locale filters, escaping,
locale fallback and the errors that name a part or a variable."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

from tidings.domain.errors import ValidationFailed
from tidings.domain.template import Template, TemplateDraft, locale_chain
from tidings.templates.engine import Audience, TemplateEngine
from tidings.templates.sandbox import MAX_TOKENS

ENGINE = TemplateEngine()


def template(variants: dict[str, dict[str, str]], default: str = "en") -> Template:
    return Template("k", 1, default, variants, "ops", datetime.now(UTC))


def render(source: str, part: str = "message", locale: str | None = None,
           zone: str | None = None, **variables: Any) -> str:
    parts = {"title": "t", "message": "m", part: source}
    rendered = ENGINE.render(template({"en": parts}), variables, Audience(locale, zone))
    return rendered.parts[part]


def failure(source: str, part: str = "message", **variables: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        render(source, part, **variables)
    return caught.value


def test_variables_render_into_every_part() -> None:
    parts = {p: f"{p}: {{{{ name }}}}" for p in
             ("title", "message", "subject", "text", "html", "push_title", "push_body")}
    rendered = ENGINE.render(template({"en": parts}), {"name": "Ada"}, Audience(None, None))
    assert rendered.parts == {p: f"{p}: Ada" for p in parts}


def test_html_is_escaped_and_text_parts_are_not() -> None:
    assert render("{{ x }}", "html", x="<b>&") == "&lt;b&gt;&amp;"
    assert render("{{ x }}", "text", x="<b>&") == "<b>&"
    assert render("{{ x }}", "title", x="<b>&") == "<b>&"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ x.format_map({}) }}",
    "{{ 'a'.center(100) }}",
    "{{ [].append(1) }}",
])
def test_the_sandbox_refuses_internals_and_unbounded_methods(source: str) -> None:
    problem = failure(source, x="s")
    assert problem.field == "variants.en.message"


@pytest.mark.parametrize("source", [
    "{% for i in range(100000000) %}{% endfor %}",
    "{{ 'a' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 2 ** 100000000 }}",
    "{{ 10 ** 300 ** 300 }}",
    "{{ '%999999999d' % 1 }}",
    "{{ 'a'|center(1000000000) }}",
    "{{ 'ab'|replace('', 'x' * 60000) }}",
    "{{ 'x'|indent(1000000000) }}",
    "{{ [1]|batch(1000000000, 0)|list }}",
    "{{ [1]|slice(1000000000)|list }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s=1) %}{% for i in range(60) %}"
    "{% set ns.s = ns.s * ns.s + 2 %}{% endfor %}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set t %}{{ ns.s }}{{ ns.s }}"
    "{% endset %}{% set ns.s = t %}{% endfor %}",
    "{% filter upper %}{% for i in range(9000) %}" + "x" * 2000 + "{% endfor %}{% endfilter %}",
    "{% macro m() %}{% for i in range(9000) %}{{ '%s' % i }}" + "y" * 1000
    + "{% endfor %}{% endmacro %}{{ m()|length }}",
])
def test_runaway_renders_are_stopped(source: str) -> None:
    problem = failure(source)
    assert problem.field == "variants.en.message"
    assert "rendering stopped" in problem.message or "nested" in problem.message


def test_a_missing_variable_names_it() -> None:
    problem = failure("Hi {{ user }}")
    assert problem.field == "variables.user"


def test_a_missing_key_of_a_given_variable_names_the_part() -> None:
    problem = failure("{{ order.total }}", order={})
    assert problem.field == "variants.en.message"


def test_a_syntax_error_names_the_variant_part_and_line() -> None:
    with pytest.raises(ValidationFailed) as caught:
        ENGINE.check({"de": {"subject": "ok\n{% if %}"}})
    assert caught.value.field == "variants.de.subject"
    assert "line 2" in caught.value.message


def test_locale_filters_format_in_the_recipients_locale_and_zone() -> None:
    instant = "2026-03-01T18:30:00Z"
    assert render("{{ t|date('long') }}", t=instant, locale="de_AT") == "1. März 2026"
    assert render("{{ t|datetime('HH:mm') }}", t=instant, zone="Europe/Vienna") == "19:30"
    assert render("{{ t|datetime('HH:mm') }}", t=instant) == "18:30"
    assert render("{{ n|number }}", n=1234.5, locale="de") == "1.234,5"
    assert render("{{ n|number }}", n=1234.5, locale="en_US") == "1,234.5"
    assert render("{{ n|currency('EUR') }}", n=3, locale="de_DE") == "3,00\xa0€"
    assert render("{{ '2026-01-02'|date('short') }}", locale="en_US") == "1/2/26"


def test_bad_values_for_the_locale_filters_name_the_part() -> None:
    assert failure("{{ 'soon'|date }}").field == "variants.en.message"
    assert failure("{{ 'lots'|number }}").field == "variants.en.message"
    assert failure("{{ '1e999999'|number }}").field == "variants.en.message"


def test_the_standard_filters_still_work_within_bounds() -> None:
    source = ("{{ names|join(', ') }}|{{ 'a-b'|replace('-', '+') }}|{{ 'x'|center(5) }}|"
              "{{ '%05d'|format(42) }}|{{ range(3)|sum }}|{{ 'ab' * 2 }}|{{ 2 ** 10 }}|"
              "{{ [1, 2]|batch(1)|list|length }}|{{ 'HELLO'.lower() }}")
    assert render(source, names=["a", "b"]) == "a, b|a+b|  x  |00042|3|abab|1024|2|hello"


def test_locale_chain_goes_from_region_to_language_to_default() -> None:
    assert locale_chain("de_AT", "en") == ["de_AT", "de", "en"]
    assert locale_chain(None, "en") == ["en"]
    variants = {"en": {"title": "Hi", "message": "m"}, "de": {"title": "Hallo"}}
    chosen = template(variants)
    assert chosen.variant_for("de_AT") == "de"
    assert chosen.variant_for("fr") == "en"
    rendered = ENGINE.render(chosen, {}, Audience("de_AT", None))
    assert rendered.locale == "de"
    assert rendered.parts == {"title": "Hallo", "message": "m"}


def test_drafts_normalise_locales_and_need_a_default_with_title_and_message() -> None:
    draft = TemplateDraft.model_validate({"key": "k", "default_locale": "de-at", "variants": {
        "de-AT": {"title": "a", "message": "b"}, "en": {"title": "c"}}})
    default, variants = draft.checked()
    assert default == "de_AT" and set(variants) == {"de_AT", "en"}
    for body, field in [
        ({"default_locale": "fr"}, "default_locale"),
        ({"variants": {"xx_YY_ZZ1": {"title": "a", "message": "b"}}}, "variants.xx_YY_ZZ1"),
        ({"variants": {"en": {"title": "a"}}}, "variants.en.message"),
        ({"variants": {"en": {"title": "a", "message": "b"},
                       "en-": {"title": "a", "message": "b"}}}, "variants.en-"),
    ]:
        full = {"key": "k", "variants": {"en": {"title": "a", "message": "b"}}, **body}
        with pytest.raises(ValidationFailed) as caught:
            TemplateDraft.model_validate(full).checked()
        assert caught.value.field == field


def test_a_render_past_its_deadline_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    from tidings.templates import bounds

    # Few steps, each of real work: only the clock can stop it, and it does.
    monkeypatch.setattr(bounds, "RENDER_SECONDS", 0.0)
    problem = failure("{% for i in range(50) %}{{ (t * 2000)|replace('a', 'bb')|length }}"
                      "{% endfor %}", t="a" * 50)
    assert "took longer than" in problem.message


def test_output_over_100_kb_is_refused_even_when_built_in_small_steps() -> None:
    problem = failure("{% for i in range(2000) %}{{ t }}{% endfor %}", t="x" * 100)
    assert "longer than 102400" in problem.message


def test_nul_in_rendered_text_is_refused() -> None:
    assert failure("{{ t }}", t="a\x00").field == "variants.en.message"


def test_joins_and_wordwraps_over_the_bound_are_refused_before_they_run() -> None:
    assert "join" in failure("{{ items|join(t) }}", items=list(range(5000)),
                             t="x" * 100).message
    assert "wordwrap" in failure("{{ t|wordwrap(1, wrapstring=w) }}", t="a b " * 500,
                                 w="y" * 1000).message
    assert "tojson" in failure("{{ [1]|tojson(indent=100000) }}").message


def test_dates_take_dates_epochs_and_aware_or_naive_instants() -> None:
    assert render("{{ d|date('yyyy-MM-dd') }}", d=0) == "1970-01-01"
    assert render("{{ d|datetime('HH:mm') }}", d="2026-01-02") == "00:00"
    assert render("{{ d|datetime('HH:mm') }}", d="2026-01-02T10:00:00") == "10:00"
    assert render("{{ d|datetime('HH:mm') }}", d="2026-01-02T10:00:00+02:00",
                  zone="UTC") == "08:00"


@pytest.mark.parametrize("source", ["{{ 1 / 0 }}", "{{ 'x'|currency('EUR', format=7) }}",
                                    "{% include 'other' %}", "{{ t|date('qqqqqqq') }}"])
def test_whatever_a_templates_code_raises_is_a_422_naming_the_part(source: str) -> None:
    assert failure(source, t="2026-01-01").field == "variants.en.message"


# Two distinct lists of 10,000 numbers: each fine, but a list holding one of them
# thousands of times is short while `==`, `in`, `str` and `tojson` walk all of it, in a
# single C call that holds the GIL (14 s of stalled event loop before these bounds).
LISTS = "{% set l = range(10000)|list %}{% set m = range(10000)|list %}"
MANY_L = ", ".join(["l"] * 30)


@pytest.mark.parametrize("source", [
    LISTS + "{{ ([l] * 20) == ([m] * 20) }}",
    LISTS + "{{ [l] * 10000 < [m] * 10000 }}",
    LISTS + "{{ m in [l] * 10000 }}",
    LISTS + "{{ ([l] * 10000)|string }}",
    LISTS + "{{ ([l] * 10000)|tojson }}",
    LISTS + "{{ ([l] * 10000)|pprint }}",
    LISTS + "{{ ([l] * 10000)|join(',') }}",
    LISTS + "{{ '%s' % ([l] * 10000,) }}",
    LISTS + "{{ (l, l) * 5000 }}",
    LISTS + "{% set a = [l, l, l, l, l, l, l, l, l, l] %}{{ [a, a, a, a, a, a, a, a, a, a] == a }}",
    LISTS + "{{ (" + MANY_L + ") == m }}",
    LISTS + "{{ {" + ", ".join(f"{i}: l" for i in range(30)) + "} == m }}",
    LISTS + "{% set ns = namespace(a=1) %}{% set b = [ns] * 10000 %}{% set ns.a = l %}"
            "{{ b|string|length }}",
    "{{ range(10000)|map('center', 100000)|list|length }}",
    "{{ '%s%s%s'|format('x' * 50000, 'y', 'z') }}",
    "{{ ('a.b ' * 1000)|urlize(target='x' * 100000) }}",
    # 360 values of 100 KB kept at once: 36 MB (in 2,900 tokens, under the compile bound).
    "{% set s = 'x' * 100000 %}" + "".join(f"{{% set v{i} = s ~ {i} %}}" for i in range(360)),
    "{% set l = range(1000)|list %}{% set ns = namespace(a=l) %}{% for i in range(300) %}"
    "{% set ns.a = [ns.a] %}{% endfor %}{{ ns.a|tojson(16)|length }}",
    "{% set l = range(1000)|list %}{% set ns = namespace(a=l) %}{% for i in range(300) %}"
    "{% set ns.a = [ns.a] %}{% endfor %}{{ ns.a|pprint|length }}",
    "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}{% set ns.l = ns.l + [i] %}"
    "{% endfor %}",
    "{{ (1).to_bytes(1000000000, 'big')|length }}",
    "{{ {}.fromkeys(range(10000), 'x' * 100000)|length }}",
])
def test_no_single_step_builds_or_walks_an_unbounded_value(source: str) -> None:
    problem = failure(source)
    assert problem.field == "variants.en.message"
    assert "rendering stopped" in problem.message or "not allowed" in problem.message
    # Refused for what it would build, not by the clock after the damage was done.
    assert "took longer" not in problem.message


# `a`: within the bounds, about 700 KB as text; 300 of it at once is 200 MB.
LARGE_A = LISTS + "{% set a = [" + ", ".join(["l"] * 12) + "] %}"
MANY_A = ", ".join(["a"] * 300)


@pytest.mark.parametrize("source", [
    "{{ range(10000)|map('center', 100000)|list|length }}",
    LISTS + "{{ ([l] * 10000)|string }}",
    "{{ ('%(a)s' * 10000) % {'a': 'x' * 50000} }}",
    LARGE_A + "{{ (" + " ~ ".join(["a"] * 300) + ")|length }}",
    LARGE_A + "{% macro f() %}{{ varargs }}{% endmacro %}{{ f(" + MANY_A + ") }}",
    LARGE_A + "{{ cycler(" + MANY_A + ").items|string }}",
])
def test_a_refused_rendering_never_held_the_memory_it_asked_for(source: str) -> None:
    # Each would build hundreds of MB (or GB) before a bound measured the result.
    tracemalloc.start()
    try:
        problem = failure(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "rendering stopped" in problem.message
    assert peak < 64 * 1024 * 1024


def test_values_within_the_bounds_still_render() -> None:
    source = ("{{ [[1, 2], [3]]|sum(start=[]) }}|{{ range(3000)|batch(1)|sum(start=[])|length }}"
              "|{{ [{'p': 2}, {'p': 3}]|sum(attribute='p') }}|{{ {'a': [1, 2]}|tojson }}"
              "|{{ {'b': (1, 2)}|pprint }}|{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
              "{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.l|length }}|{{ ns }}"
              "|{{ d.items()|list }}|{{ ([l] * 10)|length }}|{{ l|join(',')|length }}"
              "|{{ '%s of %d' % ('a', 2) }}|{{ ('x' ~ 1 ~ [2]) }}|{{ (5).bit_length() }}")
    assert render(source, d={"k": 1}, l=list(range(1000))) == (
        "[1, 2, 3]|3000|5|{\"a\": [1, 2]}|{'b': (1, 2)}|1000|<namespace>|[('k', 1)]|10|3889"
        "|a of 2|x1[2]|3")


NESTED_SOURCES = [
    "{{ " + "(" * 70 + "1" + ")" * 70 + " }}",
    "{{ " + "[" * 100 + "1" + "]" * 100 + " }}",
    "{{ x" + "|upper" * 1000 + " }}",
    "{{ " + " and ".join(["x"] * 1400) + " }}",
    "{% for a in x %}" * 21 + "{% endfor %}" * 21,
    "{% if x %}" * 100 + "{% endif %}" * 100,
    "{% if x %}" * 1000 + "{% endif %}" * 1000,
]


@pytest.mark.parametrize("source", NESTED_SOURCES)
def test_a_source_nested_past_the_compilers_limits_is_a_422_naming_the_part(
    source: str,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ENGINE.check({"de": {"subject": source}})
    assert caught.value.field == "variants.de.subject"
    assert "nested too deeply" in caught.value.message
    # A version stored before this check (or any other way a render meets it) too.
    problem = failure(source, x=[])
    assert problem.field == "variants.en.message"
    assert "nested too deeply" in problem.message


def test_a_part_of_more_tokens_than_compiling_is_bounded_by_is_a_422_naming_it() -> None:
    # `{{ a }}` is three tokens; its text, one more. Compiled, each token is Python code.
    longest = "{{ a }}" * (MAX_TOKENS // 3)
    ENGINE.check({"de": {"subject": longest}})
    assert render(longest, a="x") == "x" * (MAX_TOKENS // 3)
    for source in (longest + "{{ a }}", "{{ a~a~a~a~a~a~a~a~a~a }}" * 2600):
        with pytest.raises(ValidationFailed) as caught:
            ENGINE.check({"de": {"subject": source}})
        assert caught.value.field == "variants.de.subject"
        assert f"too long to compile: more than {MAX_TOKENS} tokens" in caught.value.message
        problem = failure(source, a="x")
        assert problem.field == "variants.en.message"
        assert "too long to compile" in problem.message
