"""The preference centre's rules alone: which lines the page lists and what their switches
show, how a submitted form is read and what it writes, the signed token (naming the user
only, one spelling), the email footer, and the gettext catalogues being complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tidings.domain.model import Medium
from tidings.domain.preference import Preference
from tidings.domain.preference_centre import (
    CatalogueEntry,
    FormError,
    changes,
    listing,
    parse_form,
)
from tidings.queue.digest_layout import plain_digest
from tidings.queue.email_footer import with_footer
from tidings.services.preference_centre import mint_link_token, read_link_token
from tidings.services.signed_links import BadToken
from tidings.support.i18n import Messages, chain

PACKAGE = Path(__file__).resolve().parents[2] / "tidings"
ALL = frozenset(Medium)


def row(channel: str, type_: str, email: bool = True, push: bool = True,
        in_app: bool = True) -> Preference:
    return Preference(channel, type_, email, push, in_app)


def test_lines_join_catalogue_history_and_rows_and_show_the_most_specific_row() -> None:
    rows = [row("*", "*", push=False), row("orders", "*", email=False)]
    entries = [CatalogueEntry("security", "login", {"en": "Sign-ins", "de": "Anmeldungen"},
                              required=True)]
    lines = listing(entries, [("orders", "shipped"), ("news", "weekly")], rows,
                    chain("de_AT"))
    assert [line.topic for line in lines] == [
        "*/*", "news/weekly", "orders/*", "orders/shipped", "security/login"]
    by = {line.topic: line for line in lines}
    # SMS and chat stay on: these rows never turned them off.
    assert by["news/weekly"].enabled == {Medium.EMAIL, Medium.IN_APP, Medium.SMS, Medium.CHAT}
    assert by["orders/shipped"].enabled == {Medium.PUSH, Medium.IN_APP, Medium.SMS,
                                            Medium.CHAT}
    assert by["security/login"].name == "Anmeldungen" and by["security/login"].required
    # Required: every switch on, though the `*/*` row turns push off for other lines.
    assert by["security/login"].enabled == ALL
    assert listing([], [("a", "b")], [], chain(None))[0].enabled == ALL


def test_a_form_writes_only_changed_lines_and_never_a_required_type() -> None:
    rows = [row("orders", "*", email=False)]
    lines = listing([CatalogueEntry("security", "login", required=True)],
                    [("orders", "shipped")], rows, ["en"])
    form = parse_form([
        ("topic", "orders/*"), ("in_app:orders/*", "on"), ("push:orders/*", "on"),
        ("sms:orders/*", "on"), ("chat:orders/*", "on"),
        ("topic", "orders/shipped"), ("in_app:orders/shipped", "on"),
        ("topic", "security/login"), ("quiet_start", " 22:00 "), ("quiet_end", "07:00"),
    ])
    assert (form.quiet_start, form.quiet_end) == ("22:00", "07:00")
    written = changes(form, lines, rows)
    assert [(c.channel, c.notification_type, c.given()) for c in written] == [
        ("orders", "shipped", {"email_enabled": False, "push_enabled": False,
                               "in_app_enabled": True, "sms_enabled": False,
                               "chat_enabled": False})]


@pytest.mark.parametrize("items", [
    [("topic", "orders")], [("topic", "orders/")], [("topic", "a b/c")],
    [("fax:orders/x", "on")], [("email:orders", "on")], [("topic", "x/y")] * 501,
])
def test_forms_the_page_never_sends_are_refused(items: list[tuple[str, str]]) -> None:
    with pytest.raises(FormError):
        parse_form(items)


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _respelled(part: str) -> str:
    """The same bytes with an unused low bit set: a spelling decoders accept, and the
    server must not (a 22-character tag has 4 unused bits; base64url("alice") 2)."""
    assert len(part) % 4 in (2, 3)
    return part[:-1] + B64URL[B64URL.index(part[-1]) | 1]


def test_the_token_names_the_user_alone_in_one_spelling() -> None:
    key, other = b"k" * 32, b"o" * 32
    token = mint_link_token(key, "alice")
    assert read_link_token(key, token) == "alice"
    assert re.fullmatch(r"YWxpY2U\.[A-Za-z0-9_-]{22}", token)  # base64url("alice") . tag
    payload, tag = token.split(".")
    for bad in (mint_link_token(other, "alice"), f"{payload}.{tag}=", f"{payload}=.{tag}",
                token + ".", token.replace(".", ".."), f"{payload}.{tag[:-1]}",
                f"{payload}.{_respelled(tag)}", f"{_respelled(payload)}.{tag}"):
        with pytest.raises(BadToken):
            read_link_token(key, bad)
    with pytest.raises(BadToken):  # a NUL in the user id: never a user
        read_link_token(key, mint_link_token(key, "a\x00b"))


def test_the_footer_goes_before_the_end_of_an_html_body_in_the_readers_language() -> None:
    messages = Messages.load()
    url = "https://n.example/preferences/abc.def"
    text, html = with_footer("Hi", "<html><body><p>Hi</p></body></html>", url, messages, "de")
    assert text.endswith(f"\n-- \nWählen Sie, was Sie erreicht: {url}\n")
    assert html is not None and html.endswith("</p>\n</body></html>")
    assert f'<a href="{url}"' in html
    assert with_footer("Hi", None, url, messages, None)[1] is None


def _catalogue(language: str) -> dict[str, str]:
    with (PACKAGE / "locale" / language / "LC_MESSAGES" / "tidings.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


def test_every_message_of_the_code_is_in_each_catalogue_and_translated_to_german() -> None:
    used = {str(found[2]) for found in extract_from_dir(str(PACKAGE))}
    assert "Choose what reaches you" in used
    german, english = _catalogue("de"), _catalogue("en")
    assert used == set(german) == set(english), "run pybabel extract/update (docs/OPERATIONS.md)"
    for msgid, text in german.items():
        assert text, f"no German for {msgid!r}"
        assert re.findall(r"%\(\w+\)[sd]", text) == re.findall(r"%\(\w+\)[sd]", msgid), msgid


def test_the_plain_digest_speaks_the_readers_language() -> None:
    from tests.unit.test_pacing_rules import note

    german = Messages.load().for_locale("de")
    parts = plain_digest([note(n) for n in range(12)], "https://n.example/p/t", german)
    assert parts.subject == "12 neue Benachrichtigungen"
    assert "und 2 weitere" in parts.text and parts.push_body.endswith("und 2 weitere")
    assert "Wählen Sie, was Sie erreicht: https://n.example/p/t" in parts.text
    assert plain_digest([note(1)], None, german).subject == "1 neue Benachrichtigung"


def test_locales_fall_back_to_their_language_then_english() -> None:
    messages = Messages.load()
    assert {"en", "de"} <= messages.languages
    assert [messages.language(tag) for tag in ("de_AT", "de-CH", "fr", None)] == [
        "de", "de", "en", "en"]
    assert messages.for_locale("de_AT").gettext("Save") == "Speichern"


@pytest.mark.parametrize(("header", "language"), [
    ("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "de"), ("en-GB,en;q=0.9,de;q=0.8", "en"),
    ("fr-FR,fr;q=0.9,de;q=0.5", "de"), ("en;q=0.5, de", "de"), ("DE-at", "de"),
    ("de;q=abc, en", "en"), ("de;q=0, en;q=0.1", "en"), ("de;q=2", None),
    ("fr, *", None), ("", None), (None, None), (",;,", None),
])
def test_a_page_that_knows_no_contact_speaks_the_browsers_first_shipped_language(
    header: str | None, language: str | None
) -> None:
    assert Messages.load().accepted(header) == language
