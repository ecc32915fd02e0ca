"""Text every store can keep: what it is, and how text from outside is made so.

PostgreSQL refuses the NUL character in text and in JSON, and a lone UTF-16 surrogate
(which Python's `json.loads` makes of an escape such as "\\ud800") has no UTF-8 form, so
neither database driver can send it. What clients send is *refused* when it is not
storable (`domain.inputs`, a 422); what providers answer (bodies, message ids, header
values, error texts) cannot be refused, so it is *repaired* on its way into the database
(`store.columns.OutsideText`), and bounded, since a provider decides how long it is.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"  # what a NUL or a lone surrogate becomes
ELLIPSIS = "\u2026"  # ends a text that was cut


def is_storable(text: str) -> bool:
    """No NUL and no lone surrogate: the text can be stored as it is."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str, limit: int) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD, cut to at most `limit`
    characters (ending in an ellipsis when cut). Storable text within the limit comes back
    as it is."""
    if not is_storable(text):
        text = "".join(REPLACEMENT if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch
                       for ch in text)
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + ELLIPSIS if limit > 0 else ""
    return text


def storable_json(value: Any, limit: int) -> Any:
    """`storable` applied to every key and string of a JSON value (others as they are)."""
    if isinstance(value, str):
        return storable(value, limit)
    if isinstance(value, dict):
        return {storable(str(key), limit): storable_json(item, limit)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item, limit) for item in value]
    return value
