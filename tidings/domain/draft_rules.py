"""The rules between fields of a notification draft, as JSON Schema for the OpenAPI
document (`NotificationDraft` judges them itself, with clearer messages): clients see them,
and generated requests keep to them."""

from __future__ import annotations

from typing import Any


def _not_both(first: str, first_type: str, second: str, second_type: str) -> dict[str, Any]:
    """JSON Schema: not both `first` and `second` given non-null."""
    return {"not": {"required": [first, second], "properties": {
        first: {"type": first_type}, second: {"type": second_type}}}}


def _not_with_broadcast(name: str, shape: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: not `name` (of that shape) in a draft with `broadcast` true
    (`broadcast_rules`)."""
    return {"not": {"required": ["broadcast", name], "properties": {
        "broadcast": {"const": True}, name: shape}}}


# The rules between fields of a draft (`_one_audience`, `_digest_now`, `check_content`,
# `broadcast_rules`),
# for the OpenAPI document: clients see them, and generated requests keep to them.
DRAFT_RULES: dict[str, Any] = {"allOf": [
    _not_both("user_id", "string", "user_ids", "array"),
    _not_both("digest", "object", "scheduled_at", "string"),
    *(_not_with_broadcast(name, {}) for name in ("user_id", "user_ids", "channel")),
    _not_with_broadcast("media", {"type": "array", "contains": {"not": {"const": "in_app"}}}),
    _not_with_broadcast("digest", {"type": "object"}),
    _not_with_broadcast("escalation", {"type": "array", "minItems": 1}),
    {"anyOf": [
        {"required": ["template"], "properties": {
            "template": {"type": "string"}, "title": {"type": "null"},
            "message": {"type": "null"}}},
        {"required": ["title", "message"], "properties": {
            "title": {"type": "string"}, "message": {"type": "string"},
            "template": {"type": "null"}}},
    ]},
]}
