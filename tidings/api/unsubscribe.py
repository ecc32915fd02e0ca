"""`/unsubscribe/{token}`: the one-click link of every email (RFC 8058).

No login: the signed token is the authority. GET only shows a page with a button, because
mail scanners and link previews fetch links by themselves; the POST (the button, or the
mail client's one-click request with the body `List-Unsubscribe=One-Click`) does it. The
body is not needed, so it is not read: a POST to a valid link always unsubscribes. Both
answer small HTML pages, a person's browser being the usual client; both are left out of
the OpenAPI document (they are links, not an API), and `docs/API.md` describes them.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from tidings.api.deps import App
from tidings.services.unsubscribe import BadToken, UnsubscribeTarget

router = APIRouter(prefix="/unsubscribe", include_in_schema=False)

# The token is a credential in the URL: keep it out of caches, search indexes and the
# Referer of anything the page might link to.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'",
}
INVALID = "This unsubscribe link is not valid. It may have been altered or cut short."


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title></head>"
        "<body style=\"font-family: sans-serif; max-width: 32rem; margin: 3rem auto\">"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _topic(target: UnsubscribeTarget) -> str:
    return escape(f"{target.channel} / {target.notification_type}")


@router.get("/{token}")
async def confirm_page(token: str, app: App) -> HTMLResponse:
    try:
        target = app.unsubscribe.check(token)
    except BadToken:
        return _page("Invalid link", f"<p>{INVALID}</p>", status=400)
    form = (
        f"<p>Stop emails about <strong>{_topic(target)}</strong>? In-app and push "
        "notifications stay as they are.</p>"
        f"<form method=\"post\" action=\"{escape(token)}\">"
        "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
        "<button type=\"submit\">Unsubscribe</button></form>"
    )
    return _page("Unsubscribe", form)


@router.post("/{token}")
async def one_click(token: str, app: App) -> HTMLResponse:
    try:
        target = await app.unsubscribe.unsubscribe(token)
    except BadToken:
        return _page("Invalid link", f"<p>{INVALID}</p>", status=400)
    return _page("Unsubscribed",
                 f"<p>You will no longer get emails about <strong>{_topic(target)}</strong>."
                 "</p>")
