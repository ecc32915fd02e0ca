"""The field cipher, the key ring and the sealing of a notification's parts, in-process."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime

import pytest

from tidings.crypto.cipher import FieldCipher, Undecryptable, key_id_of
from tidings.crypto.keyring import KeyRing, generate_entry, parse_keys
from tidings.store.sealing import (
    SEALED,
    UNREADABLE,
    Content,
    open_content,
    reseal_content,
    seal_content,
)

KEY_A = "a:" + base64.b64encode(b"A" * 32).decode()
KEY_B = "b:" + base64.urlsafe_b64encode(b"B" * 32).decode().rstrip("=")


def ring(text: str) -> KeyRing:
    parsed = parse_keys(text, "ENCRYPTION_KEYS")
    assert parsed is not None
    return parsed


def cipher(text: str = KEY_A) -> FieldCipher:
    return FieldCipher(ring(text))


def test_a_sealed_value_opens_to_its_plaintext_under_the_same_context() -> None:
    sealed = cipher().seal("Ünïcode secret".encode(), "notification:1:title")
    assert sealed.startswith("enc:v1:a:")
    assert "secret" not in sealed
    assert cipher().open(sealed, "notification:1:title") == "Ünïcode secret".encode()


def test_every_seal_uses_a_fresh_nonce() -> None:
    one, two = (cipher().seal(b"same", "ctx") for _ in range(2))
    assert one != two


@pytest.mark.parametrize("position", [0, 12, -1])  # nonce, ciphertext, tag
def test_an_altered_byte_anywhere_fails_authentication(position: int) -> None:
    sealed = cipher().seal(b"amount: 120 EUR", "ctx")
    head, body = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    altered = head + ":" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(Undecryptable, match="authentication failed"):
        cipher().open(altered, "ctx")


def test_another_context_fails_authentication() -> None:
    sealed = cipher().seal(b"for row 1", "notification:1:title")
    for other in ("notification:2:title", "notification:1:message"):
        with pytest.raises(Undecryptable, match="authentication failed"):
            cipher().open(sealed, other)


def test_a_relabelled_key_id_fails_even_with_the_same_key_bytes() -> None:
    sealed = cipher(KEY_A).seal(b"x", "ctx")
    same_bytes_other_id = "c:" + KEY_A.split(":", 1)[1]
    relabelled = sealed.replace("enc:v1:a:", "enc:v1:c:")
    with pytest.raises(Undecryptable, match="authentication failed"):
        cipher(same_bytes_other_id).open(relabelled, "ctx")


def test_an_unknown_key_or_a_malformed_value_is_undecryptable() -> None:
    sealed = cipher(KEY_A).seal(b"x", "ctx")
    with pytest.raises(Undecryptable, match="'a' is not among"):
        cipher(KEY_B).open(sealed, "ctx")
    for bad in ("plain text", "enc:v1:", "enc:v1:a:", "enc:v1:a:!!!", "enc:v1::AAAA"):
        with pytest.raises(Undecryptable):
            cipher().open(bad, "ctx")
        assert key_id_of(bad) is None


def test_the_first_key_writes_and_every_key_reads() -> None:
    old = cipher(KEY_A).seal(b"old", "ctx")
    both = cipher(f"{KEY_B},{KEY_A}")
    assert both.current_key_id == "b"
    assert both.open(old, "ctx") == b"old"
    assert not both.is_current(old)
    assert both.is_current(both.seal(b"new", "ctx"))


def test_key_lines_accept_commas_new_lines_and_comments() -> None:
    parsed = ring(f"# rotated 2026-11\n{KEY_B}\n\n{KEY_A},\n")
    assert [key.id for key in parsed.keys] == ["b", "a"]
    assert parse_keys(" , \n# nothing\n", "ENCRYPTION_KEYS") is None


@pytest.mark.parametrize(("text", "problem"), [
    ("no-colon", "entry 1 must be `id:base64key`"),
    (f"{KEY_A},bad id:xx", "entry 2 must be `id:base64key`"),
    ("short:" + base64.b64encode(b"x" * 16).decode(), "it is 16 bytes"),
    ("garbage:***", "it is not base64"),
    (f"{KEY_A},{KEY_A}", "key id 'a' is given twice"),
])
def test_bad_key_lines_are_refused_naming_the_setting_not_the_key(text: str,
                                                                  problem: str) -> None:
    with pytest.raises(ValueError) as failure:
        parse_keys(text, "ENCRYPTION_KEYS")
    message = str(failure.value)
    assert message.startswith("ENCRYPTION_KEYS: ") and problem in message
    assert base64.b64encode(b"A" * 32).decode() not in message


def test_a_generated_entry_is_a_valid_new_key() -> None:
    entry = generate_entry(now=datetime(2026, 11, 28, 1, 40, tzinfo=UTC))
    assert entry.startswith("k202611280140:")
    assert ring(entry).current.id == "k202611280140"
    assert generate_entry("mine").split(":")[1] != generate_entry("mine").split(":")[1]
    with pytest.raises(ValueError):
        generate_entry("no:colons")


def test_key_material_stays_out_of_reprs() -> None:
    secret = KEY_A.split(":", 1)[1]
    assert secret not in repr(ring(KEY_A))
    assert "AAAA" not in repr(ring(KEY_A))


PLAIN = Content("Card ending 4242", "Your code is 913 442",
                {"order": 7, "card": {"last4": "4242"}, "note": "hi"})


def test_named_parts_are_sealed_and_the_rest_left_alone() -> None:
    sealed = seal_content(cipher(), "n1", ["title", "data.card"], PLAIN)
    assert sealed.title.startswith("enc:v1:a:") and sealed.message == PLAIN.message
    assert sealed.data["order"] == 7 and sealed.data["note"] == "hi"
    assert set(sealed.data["card"]) == {SEALED}
    assert "4242" not in repr(sealed.title) + repr(sealed.data)
    assert open_content(cipher(), "n1", ["title", "data.card"], sealed) == PLAIN


def test_the_whole_data_object_seals_as_one_value() -> None:
    sealed = seal_content(cipher(), "n1", ["message", "data"], PLAIN)
    assert set(sealed.data) == {SEALED}
    assert open_content(cipher(), "n1", ["message", "data"], sealed) == PLAIN


def test_parts_of_another_notification_open_as_placeholders_and_are_logged(
    caplog: pytest.LogCaptureFixture
) -> None:
    names = ["title", "message", "data.card"]
    sealed = seal_content(cipher(), "n1", names, PLAIN)
    with caplog.at_level(logging.ERROR):
        opened = open_content(cipher(), "n2", names, sealed)
    assert opened.title == UNREADABLE and opened.message == UNREADABLE
    assert opened.data == {**PLAIN.data, "card": UNREADABLE}
    assert "n2" in caplog.text and "authentication failed" in caplog.text
    assert "4242" not in caplog.text and "913" not in caplog.text
    whole = seal_content(cipher(), "n1", ["data"], PLAIN)
    assert open_content(cipher(), "n2", ["data"], whole).data == {}


def test_without_keys_sealed_parts_read_as_placeholders(
    caplog: pytest.LogCaptureFixture
) -> None:
    sealed = seal_content(cipher(), "n1", ["title"], PLAIN)
    with caplog.at_level(logging.ERROR):
        assert open_content(None, "n1", ["title"], sealed).title == UNREADABLE
    assert "ENCRYPTION_KEYS" in caplog.text


def test_a_plaintext_where_a_sealed_value_belongs_is_not_trusted() -> None:
    opened = open_content(cipher(), "n1", ["title", "data.card"], PLAIN)
    assert opened.title == UNREADABLE and opened.data["card"] == UNREADABLE


def test_reseal_moves_older_values_onto_the_current_key_and_only_those() -> None:
    names = ["title", "message", "data", ]
    old = seal_content(cipher(KEY_A), "n1", names, PLAIN)
    both = cipher(f"{KEY_B},{KEY_A}")
    first = reseal_content(both, "n1", names, old)
    assert (first.rewritten, first.unreadable) == (3, 0)
    assert first.content.title.startswith("enc:v1:b:")
    assert open_content(cipher(KEY_B), "n1", names, first.content) == PLAIN
    again = reseal_content(both, "n1", names, first.content)
    assert (again.rewritten, again.unreadable) == (0, 0)
    assert again.content == first.content


def test_reseal_leaves_what_it_cannot_open_and_counts_it() -> None:
    names = ["title", "data.card", "data.note"]
    moved = seal_content(cipher(KEY_A), "other", names, PLAIN)
    # data.note was never sealed: no sealed value where one belongs.
    stored = Content(moved.title, moved.message, {**moved.data, "note": "hi"})
    result = reseal_content(cipher(f"{KEY_B},{KEY_A}"), "n1", names, stored)
    assert (result.rewritten, result.unreadable) == (0, 3)
    assert result.content == stored
