"""`/unsubscribe/{token}`: the one-click link of every email (RFC 8058).

No login: the signed token is the authority. GET only shows a page with a button, because
mail scanners and link previews fetch links by themselves; the POST (the button, or the
mail client's one-click request with the body `List-Unsubscribe=One-Click`) does it. The
body is not needed, so it is not read: a POST to a valid link always unsubscribes. Both
answer small HTML pages in the user's language, a person's browser being the usual
client; both are left out of the OpenAPI document (they are links, not an API), and
`docs/API.md` describes them.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from tidings.api.deps import App
from tidings.api.pages import page
from tidings.services.signed_links import BadToken
from tidings.services.unsubscribe import UnsubscribeTarget

router = APIRouter(prefix="/unsubscribe", include_in_schema=False)


def _topic(target: UnsubscribeTarget) -> str:
    return escape(f"{target.channel} / {target.notification_type}")


async def _invalid(app: App) -> HTMLResponse:
    # The token names nobody we can trust, so the page has no contact's language.
    _ = app.messages.for_locale(None).gettext
    return page("en", _("Invalid link"), "<p>" + escape(_(
        "This unsubscribe link is not valid. It may have been altered or cut short.")) + "</p>",
        status=400)


@router.get("/{token}")
async def confirm_page(token: str, app: App) -> HTMLResponse:
    try:
        target = app.unsubscribe.check(token)
    except BadToken:
        return await _invalid(app)
    locale = await app.preference_centre.locale_of(target.user_id)
    _ = app.messages.for_locale(locale).gettext
    question = escape(_("Stop emails about %(topic)s? In-app and push notifications stay "
                        "as they are.")) % {"topic": f"<strong>{_topic(target)}</strong>"}
    title = _("Unsubscribe")
    form = (
        f"<p>{question}</p>"
        f'<form method="post" action="{escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{escape(title)}</button></form>'
    )
    return page(app.messages.language(locale), title, form)


@router.post("/{token}")
async def one_click(token: str, app: App) -> HTMLResponse:
    try:
        target = await app.unsubscribe.unsubscribe(token)
    except BadToken:
        return await _invalid(app)
    locale = await app.preference_centre.locale_of(target.user_id)
    _ = app.messages.for_locale(locale).gettext
    done = escape(_("You will no longer get emails about %(topic)s.")) % {
        "topic": f"<strong>{_topic(target)}</strong>"}
    return page(app.messages.language(locale), _("Unsubscribed"), f"<p>{done}</p>")
