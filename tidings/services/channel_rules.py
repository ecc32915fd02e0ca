"""Who may join which topic channel: the operator's rules (CHANNEL_RULES or
CHANNEL_RULES_FILE), checked when a user subscribes.

Guarantees:
- an invalid name (`user:bob`, `channel:x`, empty, not a string) is always denied, so no
  crafted name reaches another user's room;
- without rules, every valid name is public;
- with rules, the first rule whose pattern matches the name decides, and a name no rule
  matches is denied. A rule with `roles` admits callers holding any of them; a rule without
  admits everyone unless it says `"allow": false`.

Patterns: `*` stands for any run of name characters (dots included, possibly none), and
`{sub}` for the caller's own user id, so `user.{sub}.*` is a private family per user.
Everything else matches itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tidings.config.values import SUB_PLACEHOLDER, ChannelRuleSpec
from tidings.domain.fields import is_name


def _glob(text: str) -> str:
    return re.escape(text).replace(r"\*", ".*")


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """One compiled rule: the pattern as regular-expression pieces around `{sub}`."""

    pieces: tuple[str, ...]
    roles: frozenset[str] | None
    allow: bool
    # A pattern without `{sub}` is the same for every caller: compiled once.
    fixed: re.Pattern[str] | None

    @classmethod
    def from_spec(cls, spec: ChannelRuleSpec) -> ChannelRule:
        pieces = tuple(_glob(part) for part in spec.pattern.split(SUB_PLACEHOLDER))
        roles = frozenset(spec.roles) if spec.roles is not None else None
        fixed = re.compile(pieces[0]) if len(pieces) == 1 else None
        return cls(pieces, roles, spec.allow is not False, fixed)

    def matches(self, name: str, user_id: str) -> bool:
        if self.fixed is not None:
            return self.fixed.fullmatch(name) is not None
        return re.fullmatch(re.escape(user_id).join(self.pieces), name) is not None

    def admits(self, roles: frozenset[str]) -> bool:
        if self.roles is not None:
            return bool(self.roles & roles)
        return self.allow


class ChannelRules:
    """The configured rules, compiled once at start-up (their shape was validated with the
    settings, so a bad rule never gets this far)."""

    def __init__(self, specs: Sequence[ChannelRuleSpec] | None) -> None:
        self._rules = [ChannelRule.from_spec(spec) for spec in specs] if specs else None

    @property
    def configured(self) -> bool:
        return self._rules is not None

    def may_join(self, name: object, user_id: str, roles: frozenset[str]) -> bool:
        if not isinstance(name, str) or not is_name(name):
            return False
        if self._rules is None:
            return True
        for rule in self._rules:
            if rule.matches(name, user_id):
                return rule.admits(roles)
        return False
