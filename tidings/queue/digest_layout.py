"""What one digest message says: the built-in layout used when no template gives a
`digest` part. Subject "N new notifications"; the body lists the first items in full,
then "and N more".

`DigestLayout` is the hook for templates: a callable from the folded notifications, the
link to the user's preference centre and the recipient's translations to the message's
parts. The dispatcher takes one (default `plain_digest`); a template's `digest` part is
plugged in by passing a layout that renders it, with `plain_digest` as fallback.
"""

from __future__ import annotations

import gettext
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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


ENGLISH = gettext.NullTranslations()


class DigestLayout(Protocol):
    def __call__(self, items: Sequence[Notification], preferences_url: str | None,
                 words: gettext.NullTranslations = ENGLISH) -> DigestParts:
        """The parts of one digest message; `words` translates the layout's own words
        into the recipient's language."""


def plain_digest(items: Sequence[Notification], preferences_url: str | None,
                 words: gettext.NullTranslations = ENGLISH) -> DigestParts:
    """The built-in digest: each of the first `FULL_ITEMS` items as title and message, a
    count of the others, and a link to the preferences when the service knows its URL."""
    _, ngettext = words.gettext, words.ngettext
    shown, rest = items[:FULL_ITEMS], len(items) - FULL_ITEMS
    more = ngettext("and %(count)d more", "and %(count)d more", max(rest, 0)) % {
        "count": rest}
    subject = ngettext("%(count)d new notification", "%(count)d new notifications",
                       len(items)) % {"count": len(items)}
    choose = _("Choose what reaches you")
    text_blocks = [f"{item.title}\n{item.message}" for item in shown]
    html_blocks = [
        f"<li><strong>{html.escape(item.title)}</strong><br>\n"
        + html.escape(item.message).replace("\n", "<br>\n") + "</li>"
        for item in shown
    ]
    if rest > 0:
        text_blocks.append(more)
        html_blocks.append(f"<li>{html.escape(more)}</li>")
    text = "\n\n".join(text_blocks)
    body = "<ul>\n" + "\n".join(html_blocks) + "\n</ul>"
    if preferences_url:
        text += f"\n\n{choose}: {preferences_url}"
        link = html.escape(preferences_url, quote=True)
        body += f'\n<p><a href="{link}">{html.escape(choose)}</a></p>'
    titles = ", ".join(item.title for item in shown)
    push_body = titles + (f" {more}" if rest > 0 else "")
    return DigestParts(subject, text, body, push_body[:1000])
