"""`/c/{token}`: a tracked link of an email (DESIGN section 12). No login: the signed
token is the authority, and it names a notification and which of its stored links; the
answer is a 302 to that stored URL, or 400 for a token this server did not sign. Left
out of the OpenAPI document (a link, not an API); docs/API.md describes it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from tidings.api.deps import App

router = APIRouter(include_in_schema=False)

# The token is a credential in the URL: kept out of caches and of the Referer the target
# site would see.
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Robots-Tag": "noindex"}


@router.get("/c/{token}")
async def follow(token: str, app: App) -> RedirectResponse:
    return RedirectResponse(await app.clicks.follow(token), status_code=302, headers=HEADERS)
