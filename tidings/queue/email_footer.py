"""The footer every email carries (contract section 11): a link to the recipient's
preference centre, in the recipient's language. The link is the signed URL as it is, never
rewritten by any click tracking: it carries a credential, and it must work as sent."""

from __future__ import annotations

import html
import re

from tidings.support.i18n import Messages

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def with_footer(text: str, body: str | None, url: str, messages: Messages,
                locale: str | None) -> tuple[str, str | None]:
    """The text and HTML parts with the footer added (in an HTML document, before its
    `</body>`)."""
    _ = messages.for_locale(locale).gettext
    words = _("Choose what reaches you")
    text = f"{text}\n\n-- \n{words}: {url}\n"
    if body is None:
        return text, None
    link = html.escape(url, quote=True)
    footer = (f'\n<hr>\n<p style="font-size:13px;color:#4a4a55">'
              f'<a href="{link}" style="color:#0b57d0">{html.escape(words)}</a></p>\n')
    ends = list(_BODY_END.finditer(body))
    if ends:
        at = ends[-1].start()
        return text, body[:at] + footer + body[at:]
    return text, body + footer
