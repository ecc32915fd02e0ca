"""Channel rules: which caller may join which name, and which rule sets are refused at
start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings
from tidings.config.values import ChannelRuleSpec, decode_rules_json
from tidings.services.channel_rules import ChannelRules

RULES: list[dict[str, Any]] = [
    {"pattern": "user.{sub}.*"},
    {"pattern": "user.*", "roles": ["admin"]},
    {"pattern": "user.*", "allow": False},
    {"pattern": "orders.*", "roles": ["staff", "admin"]},
    {"pattern": "secret", "allow": False},
    {"pattern": "news"},
    {"pattern": "public-*", "allow": True},
]
STAFF = frozenset({"staff"})
ADMIN = frozenset({"admin"})
NOBODY: frozenset[str] = frozenset()


def rules(specs: list[dict[str, Any]] | None) -> ChannelRules:
    return ChannelRules([ChannelRuleSpec(**spec) for spec in specs] if specs else None)


@pytest.mark.parametrize(
    ("name", "user", "roles", "allowed"),
    [
        ("user.alice.inbox", "alice", NOBODY, True),  # the caller's own topics
        ("user.alice.a.b", "alice", NOBODY, True),  # `*` spans dots
        ("user.alice.", "alice", NOBODY, True),  # `*` may match nothing
        ("user.alice", "alice", NOBODY, False),  # but the dot is literal
        ("user.bob.inbox", "alice", NOBODY, False),  # someone else's: falls to the deny
        ("user.bob.inbox", "root", ADMIN, True),  # an admin rule before the deny
        ("user.a.b.inbox", "a.b", NOBODY, True),  # a sub with dots is matched whole
        ("user.aXb.inbox", "a.b", NOBODY, False),  # and literally, not as a pattern
        ("orders.eu", "carol", STAFF, True),
        ("orders.eu", "root", ADMIN, True),
        ("orders.eu", "alice", NOBODY, False),
        ("orders.eu", "alice", frozenset({"service"}), False),
        ("orders", "carol", STAFF, False),  # `orders.*` needs the dot
        ("secret", "root", ADMIN, False),
        ("news", "alice", NOBODY, True),
        ("newsletter", "alice", NOBODY, False),  # patterns match the whole name
        ("public-talk", "alice", NOBODY, True),
        ("other", "carol", STAFF, False),  # no rule matches: denied
        ("user:alice", "alice", NOBODY, False),  # invalid names are always denied
        ("", "alice", NOBODY, False),
        (7, "alice", NOBODY, False),
        (None, "alice", NOBODY, False),
    ],
)
def test_first_matching_rule_decides(name: object, user: str, roles: frozenset[str],
                                     allowed: bool) -> None:
    assert rules(RULES).may_join(name, user, roles) is allowed


@pytest.mark.parametrize(
    ("name", "allowed"),
    [("orders", True), ("user.bob.inbox", True), ("x" * 100, True),
     ("user:bob", False), ("channel:x", False), ("x" * 101, False), ("", False),
     (["orders"], False)],
)
def test_without_rules_every_valid_name_is_public(name: object, allowed: bool) -> None:
    assert not rules(None).configured
    assert rules(None).may_join(name, "alice", NOBODY) is allowed


def test_a_catch_all_rule_at_the_end_opens_what_is_left() -> None:
    opened = rules([{"pattern": "admin.*", "roles": ["admin"]}, {"pattern": "*"}])
    assert opened.configured
    assert opened.may_join("anything", "alice", NOBODY)
    assert not opened.may_join("admin.audit", "alice", NOBODY)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "Invalid JSON"),
        ('{"pattern": "x"}', "valid array"),
        ('[{"roles": ["a"]}]', '(rule 1, "pattern")'),
        ('[{"pattern": "ok"}, {"pattern": "user:*"}]', '(rule 2, "pattern")'),
        ('[{"pattern": "a b"}]', "name characters"),
        ('[{"pattern": ""}]', "at least 1 character"),
        ('[{"pattern": "x", "roles": []}]', '"roles"'),
        ('[{"pattern": "x", "roles": [""]}]', '"roles"'),
        ('[{"pattern": "x", "roles": "staff"}]', '"roles"'),
        ('[{"pattern": "x", "roles": ["a"], "allow": true}]', "not both"),
        ('[{"pattern": "x", "allow": "maybe"}]', '"allow"'),
        ('[{"pattern": "x", "public": true}]', '"public"'),
    ],
)
def test_bad_rules_are_refused_naming_the_setting_and_rule(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=r"^CHANNEL_RULES: ") as caught:
        decode_rules_json(text, "CHANNEL_RULES")
    assert complaint in str(caught.value)


def test_rules_come_from_the_environment_as_json() -> None:
    settings = make_settings("sqlite://", channel_rules='[{"pattern": "news"}]')
    assert settings.channel_rules == [ChannelRuleSpec(pattern="news")]
    assert make_settings("sqlite://", channel_rules="  ").channel_rules is None
    assert make_settings("sqlite://", channel_rules="[]").channel_rules is None


def test_rules_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('[{"pattern": "orders.*", "roles": ["staff"]}]')
    settings = make_settings("sqlite://", channel_rules_file=str(path))
    assert settings.channel_rules == [ChannelRuleSpec(pattern="orders.*", roles=["staff"])]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [(None, "cannot read"), (b"\xff\xfe", "cannot read"), (b"[{]", "Invalid JSON")],
)
def test_a_bad_rules_file_is_refused_naming_the_setting(
    tmp_path: Path, content: bytes | None, complaint: str
) -> None:
    path = tmp_path / "rules.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValidationError) as caught:
        make_settings("sqlite://", channel_rules_file=str(path))
    assert "CHANNEL_RULES_FILE" in str(caught.value)
    assert complaint in str(caught.value)


def test_rules_in_both_places_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text("[]")
    with pytest.raises(ValidationError, match="CHANNEL_RULES or CHANNEL_RULES_FILE"):
        make_settings("sqlite://", channel_rules="[]", channel_rules_file=str(path))
