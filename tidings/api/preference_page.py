"""The HTML of the preference centre, in the reader's language.

Keyboard use comes from the markup alone: native checkboxes and time fields in reading
order (a row's switches left to right, then the quiet hours, then the button), each with a
label naming both the medium and the type, and a visible focus ring from the stylesheet.
"""

from __future__ import annotations

import gettext
from html import escape

from fastapi.responses import HTMLResponse

from tidings.api.pages import page
from tidings.domain.model import WILDCARD
from tidings.domain.preference_centre import MEDIA, Line
from tidings.services.preference_centre import CentrePage
from tidings.support.i18n import Messages


def _media_names(t: gettext.NullTranslations) -> dict[str, str]:
    _ = t.gettext
    return {"in_app": _("In-app"), "email": _("Email"), "push": _("Push"), "sms": _("SMS"),
            "chat": _("Chat")}


def _label(line: Line, t: gettext.NullTranslations) -> str:
    """What a reader calls the line: the catalogue's name, else what the ids say."""
    _ = t.gettext
    if line.name:
        return line.name
    channel, type_ = line.channel, line.notification_type
    if channel == WILDCARD and type_ == WILDCARD:
        return _("Everything else")
    if type_ == WILDCARD:
        return _("All types in %(channel)s") % {"channel": channel}
    if channel == WILDCARD:
        return _("%(type)s in every channel") % {"type": type_}
    return type_


def _row(index: int, line: Line, t: gettext.NullTranslations) -> tuple[str, str]:
    """The line's table row, and the hidden field that names it in the form (none for a
    required type: the form cannot change it)."""
    _ = t.gettext
    label = _label(line, t)
    head = f'<th scope="row" id="line-{index}">{escape(label)}'
    if line.name or line.channel != WILDCARD:
        ids = escape(f"{line.channel} / {line.notification_type}")
        head += f' <span class="ids">{ids}</span>'
    if line.required:
        required = _("Required: always sent")
        head += f' <span class="locked">{escape(required)}</span>'
    head += "</th>"
    cells = []
    for medium, medium_name in _media_names(t).items():
        box_id = f"{medium}-{index}"
        checked = " checked" if any(m.value == medium for m in line.enabled) else ""
        locked = " disabled" if line.required else ""
        name = f"{medium}:{line.topic}"
        text = _("%(medium)s for %(type)s") % {"medium": medium_name, "type": label}
        cells.append(
            f'<td><input type="checkbox" id="{box_id}" name="{escape(name)}" value="on"'
            f'{checked}{locked}><label for="{box_id}" class="visually-hidden">'
            f"{escape(text)}</label>"
            # The column's name again, shown only on narrow screens where the table's head
            # is hidden; the label above already names the switch to assistive technology.
            f'<span class="medium" aria-hidden="true">{escape(medium_name)}</span></td>')
    hidden = ("" if line.required else
              f'<input type="hidden" name="topic" value="{escape(line.topic)}">')
    return f"<tr>{head}{''.join(cells)}</tr>", hidden


def render_centre(messages: Messages, centre: CentrePage, token: str) -> HTMLResponse:
    t = messages.for_locale(centre.locale)
    _ = t.gettext
    # Each text first, outside the f-strings: the catalogue extractor reads plain calls.
    words = {
        "caption": _("How each kind of notification reaches you"),
        "column": _("Notification type"),
        "none": _("You have received no notifications in the last 90 days."),
        "intro": _("Choose how you hear about each kind of notification."),
        "quiet": _("Quiet hours"),
        "hint": _("Email and push wait until quiet hours end; urgent notifications still "
                  "come through. Leave both empty for none."),
        "from": _("From"),
        "until": _("Until"),
        "save": _("Save"),
    }
    say = {key: escape(text) for key, text in words.items()}
    media = _media_names(t)
    if centre.lines:
        rows = [_row(i, line, t) for i, line in enumerate(centre.lines)]
        table = (
            f'<table class="prefs"><caption>{say["caption"]}</caption>'
            f'<thead><tr><th scope="col">{say["column"]}</th>'
            + "".join(f'<th scope="col">{escape(media[m.value])}</th>' for m in MEDIA)
            + "</tr></thead><tbody>"
            + "".join(row for row, _hidden in rows)
            + "</tbody></table>" + "".join(hidden for _row_html, hidden in rows)
        )
    else:
        table = f'<p>{say["none"]}</p>'
    quiet = centre.quiet_hours
    start, end = (quiet.start, quiet.end) if quiet else ("", "")
    body = (
        f'<p>{say["intro"]}</p>'
        f'<form method="post" action="{escape(token)}">{table}'
        f'<fieldset class="quiet"><legend>{say["quiet"]}</legend>'
        f'<p class="hint" id="quiet-hint">{say["hint"]}</p>'
        f'<label for="quiet_start">{say["from"]}</label>'
        f'<input type="time" id="quiet_start" name="quiet_start" value="{escape(start)}" '
        'aria-describedby="quiet-hint">'
        f'<label for="quiet_end">{say["until"]}</label>'
        f'<input type="time" id="quiet_end" name="quiet_end" value="{escape(end)}" '
        'aria-describedby="quiet-hint"></fieldset>'
        f'<p><button type="submit">{say["save"]}</button></p></form>'
    )
    return page(messages.language(centre.locale), _("Your notification preferences"), body)


def render_problem(messages: Messages, locale: str | None, title: str, text: str,
                   status: int, back: str | None = None, depth: int = 1) -> HTMLResponse:
    _ = messages.for_locale(locale).gettext
    back_text = _("Back to your preferences")
    body = f'<p role="alert">{escape(text)}</p>'
    if back:
        body += f'<p><a href="{escape(back)}">{escape(back_text)}</a></p>'
    return page(messages.language(locale), title, body, status=status, depth=depth)
