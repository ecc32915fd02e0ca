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

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tidings.api.deps import App
from tidings.api.pages import depth_of, page
from tidings.services.signed_links import BadToken
from tidings.services.unsubscribe import UnsubscribeTarget

router = APIRouter(prefix="/unsubscribe", include_in_schema=False)


def _topic(target: UnsubscribeTarget) -> str:
    return escape(f"{target.channel} / {target.notification_type}")


def _invalid(app: App, request: Request, token: str) -> HTMLResponse:
    # The token names nobody we can trust: the page speaks the browser's language.
    locale = app.messages.accepted(request.headers.get("accept-language"))
    _ = app.messages.for_locale(locale).gettext
    return page(app.messages.language(locale), _("Invalid link"),
                '<p role="alert">' + escape(_(
                    "This unsubscribe link is not valid. It may have been altered or cut "
                    "short.")) + "</p>", status=400, depth=depth_of(token))


# `:path`, so that a link cut to `/unsubscribe/` or grown a segment gets the page of a bad
# link (a 400 in the reader's language) rather than the API's JSON 404.
@router.get("/{token:path}")
async def confirm_page(token: str, request: Request, app: App) -> HTMLResponse:
    try:
        target = app.unsubscribe.check(token)
    except BadToken:
        return _invalid(app, request, token)
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


@router.post("/{token:path}")
async def one_click(token: str, request: Request, app: App) -> HTMLResponse:
    try:
        target = await app.unsubscribe.unsubscribe(token)
    except BadToken:
        return _invalid(app, request, token)
    locale = await app.preference_centre.locale_of(target.user_id)
    _ = app.messages.for_locale(locale).gettext
    done = escape(_("You will no longer get emails about %(topic)s.")) % {
        "topic": f"<strong>{_topic(target)}</strong>"}
    return page(app.messages.language(locale), _("Unsubscribed"), f"<p>{done}</p>")
