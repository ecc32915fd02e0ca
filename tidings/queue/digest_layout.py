"""What one digest message says: the built-in layout used when no template gives a
`digest` part. Subject "N new notifications"; the body lists the first items in full,
then "and N more".

`DigestLayout` is the hook for templates: a callable from the folded notifications to the
message's parts. The dispatcher takes one (default `plain_digest`); a template's `digest`
part is plugged in by passing a layout that renders it, with `plain_digest` as fallback.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tidings.domain.notification import Notification

FULL_ITEMS = 10  # items shown in full; the rest are counted


@dataclass(frozen=True, slots=True)
class DigestParts:
    subject: str  # the email subject, and the push title
    text: str
    html: str
    push_body: str

    @property
    def sms(self) -> str:
        """An SMS digest: the subject and the items' titles on one line."""
        return f"{self.subject}: {self.push_body}"


DigestLayout = Callable[[Sequence[Notification], str | None], DigestParts]


def _subject(count: int) -> str:
    return f"{count} new notification" + ("" if count == 1 else "s")


def plain_digest(items: Sequence[Notification], preferences_url: str | None) -> DigestParts:
    """The built-in digest: each of the first `FULL_ITEMS` items as title and message, a
    count of the others, and a link to the preferences when the service knows its URL."""
    shown, rest = items[:FULL_ITEMS], len(items) - FULL_ITEMS
    text_blocks = [f"{item.title}\n{item.message}" for item in shown]
    html_blocks = [
        f"<li><strong>{html.escape(item.title)}</strong><br>\n"
        + html.escape(item.message).replace("\n", "<br>\n") + "</li>"
        for item in shown
    ]
    if rest > 0:
        text_blocks.append(f"and {rest} more")
        html_blocks.append(f"<li>and {rest} more</li>")
    text = "\n\n".join(text_blocks)
    body = "<ul>\n" + "\n".join(html_blocks) + "\n</ul>"
    if preferences_url:
        text += f"\n\nChoose what reaches you: {preferences_url}"
        link = html.escape(preferences_url, quote=True)
        body += f'\n<p><a href="{link}">Choose what reaches you</a></p>'
    titles = ", ".join(item.title for item in shown)
    push_body = titles + (f" and {rest} more" if rest > 0 else "")
    return DigestParts(_subject(len(items)), text, body, push_body[:1000])
