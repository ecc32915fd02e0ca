"""A notification's links in an email (DESIGN section 12): its `url` as a link, its
actions as buttons, added to the text and HTML parts. Where each link points (the stored
URL, or a tracked redirect to it) is the caller's: `href` answers it for link N (0 the
`url`, N the N-th action)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

OPEN_LABEL = "Open"
BUTTON_STYLE = ("display:inline-block;padding:8px 16px;margin:4px 8px 4px 0;"
                "border-radius:4px;background:#2a5bd7;color:#ffffff;text-decoration:none")


def links_of(url: str | None, actions: list[dict[str, Any]] | None,
             href: Callable[[int], str]) -> list[tuple[int, str, str]]:
    """(which, label, href) of each link the notification has, in order."""
    found: list[tuple[int, str, str]] = []
    if url:
        found.append((0, OPEN_LABEL, href(0)))
    for index, action in enumerate(actions or (), start=1):
        found.append((index, str(action.get("label", "")), href(index)))
    return found


def with_links(parts: dict[str, str], links: list[tuple[int, str, str]]) -> dict[str, str]:
    """The email parts with the links appended: a line each in the text, the primary link
    and a row of buttons in the HTML (every value escaped)."""
    if not links:
        return parts
    text = parts["text"] + "\n\n" + "\n".join(f"{label}: {href}" for _, label, href in links)
    anchors = []
    for which, label, href in links:
        style = "" if which == 0 else f' style="{BUTTON_STYLE}"'
        anchors.append(f'<a href="{html.escape(href, quote=True)}"{style}>'
                       f"{html.escape(label)}</a>")
    block = '<p class="tidings-links">' + " ".join(anchors) + "</p>"
    return {**parts, "text": text, "html": parts["html"] + "\n" + block}
