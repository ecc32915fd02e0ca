"""The preference centre (contract section 11): `GET /api/users/{user_id}/preference-link`
for producers, and the page `GET`/`POST /preferences/{token}` that the link opens.

The page is plain HTML with real form controls and no script: a table with a checkbox per
medium for each type (a required type's are disabled, with a word saying why), and the
quiet hours as two time fields. A POST answers 303 back to the page (`{PUBLIC_URL}/
preferences/{token}`), so a reload does not submit again. Like `/unsubscribe`, the page
routes are links, not an API: left out of the OpenAPI document, described in docs/API.md.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tidings.api.deps import App, Caller
from tidings.api.pages import HEADERS, depth_of
from tidings.api.preference_page import render_centre, render_problem
from tidings.api.schemas import PreferenceLinkOut, error_responses
from tidings.domain.errors import Forbidden
from tidings.domain.inputs import Text
from tidings.services.preference_centre import BadForm
from tidings.services.signed_links import BadToken

router = APIRouter(prefix="/api/users", tags=["contacts"])
pages = APIRouter(prefix="/preferences", include_in_schema=False)
UserPath = Annotated[Text, Path(min_length=1, max_length=255)]
MAX_FORM_FIELDS = 2000  # three switches and a topic per line, 500 lines


@router.get("/{user_id}/preference-link", response_model=PreferenceLinkOut,
            responses=error_responses(401, 403, 422, 503),
            summary="The signed link to a user's preference centre (service or admin)")
async def preference_link(user_id: UserPath, caller: Caller, app: App) -> JSONResponse:
    if not caller.may_create:
        raise Forbidden("a preference link needs the service or admin role")
    return JSONResponse({"url": app.preference_centre.link(user_id)})


def _invalid(app: App, request: Request, token: str) -> HTMLResponse:
    # The token names nobody we can trust: the page speaks the browser's language.
    locale = app.messages.accepted(request.headers.get("accept-language"))
    _ = app.messages.for_locale(locale).gettext
    return render_problem(app.messages, locale, _("Invalid link"), _(
        "This preference link is not valid. It may have been altered or cut short."), 400,
        depth=depth_of(token))


# `:path`, so that a link cut to `/preferences/` or grown a segment gets the page of a bad
# link (a 400 in the reader's language) rather than the API's JSON 404.
@pages.get("/{token:path}")
async def show(token: str, request: Request, app: App) -> HTMLResponse:
    try:
        centre = await app.preference_centre.page(token)
    except BadToken:
        return _invalid(app, request, token)
    return render_centre(app.messages, centre, token)


async def _not_saved(app: App, user_id: str, token: str, field: str) -> HTMLResponse:
    locale = await app.preference_centre.locale_of(user_id)
    _ = app.messages.for_locale(locale).gettext
    return render_problem(app.messages, locale, _("Not saved"),
                          _("The form was not valid (%(field)s). Nothing was changed.")
                          % {"field": field}, 422, back=token)


@pages.post("/{token:path}", response_model=None)
async def submit(token: str, request: Request, app: App) -> Response:
    try:
        user_id = app.preference_centre.user_of(token)
    except BadToken:
        return _invalid(app, request, token)
    try:
        # The page's form is urlencoded; read here rather than through a multipart
        # parser the server does not otherwise need. The body size is bounded upstream.
        items = parse_qsl((await request.body()).decode(), keep_blank_values=True,
                          max_num_fields=MAX_FORM_FIELDS)
        await app.preference_centre.save(token, items)
    except BadForm as exc:
        return await _not_saved(app, user_id, token, exc.field)
    except (UnicodeDecodeError, ValueError):  # not UTF-8, or too many fields
        return await _not_saved(app, user_id, token, "body")
    return RedirectResponse(app.preference_centre.link(user_id), status_code=303,
                            headers=HEADERS)

