"""Routes of `/api/admin/templates`: the template catalogue and its preview. Every route
needs the role `admin` (any other caller: 403; no token: 401)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from tidings.api.admin import Admin
from tidings.api.deps import App
from tidings.api.operator_schemas import PreviewOut, TemplateOut, TemplatePageOut
from tidings.api.params import KeyCursor, Limit
from tidings.api.schemas import error_responses
from tidings.domain.template import PreviewRequest, TemplateDraft

router = APIRouter(prefix="/api/admin/templates", tags=["templates"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)
Key = Annotated[str, Path(max_length=200)]
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.post("", status_code=201, response_model=TemplateOut,
             responses=error_responses(400, 401, 403, 409, 413, 422, 503),
             summary="Create a template (version 1); 409 if the key exists")
async def create_template(draft: TemplateDraft, caller: Admin, app: App) -> JSONResponse:
    template = await app.templates.create(caller, draft)
    return JSONResponse(template.to_json(), status_code=201)


@router.put("/{key}", response_model=TemplateOut, responses=ERRORS,
            summary="Save a new version of a template")
async def update_template(key: Key, draft: TemplateDraft, caller: Admin,
                          app: App) -> JSONResponse:
    return JSONResponse((await app.templates.update(caller, key, draft)).to_json())


@router.get("", response_model=TemplatePageOut, responses=ERRORS,
            summary="Templates (their latest versions), by key")
async def list_templates(_admin: Admin, app: App, limit: Limit = 20,
                         cursor: KeyCursor = None) -> JSONResponse:
    page = await app.templates.page(limit, cursor)
    return JSONResponse({"items": [item.summary() for item in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/{key}", response_model=TemplateOut, responses=ERRORS,
            summary="One template with its variants (the latest version, or `version`)")
async def get_template(key: Key, _admin: Admin, app: App,
                       version: Version = None) -> JSONResponse:
    return JSONResponse((await app.templates.get(key, version)).to_json())


@router.delete("/{key}", status_code=204, responses=ERRORS,
               summary="Delete every version; created notifications keep their text")
async def delete_template(key: Key, _admin: Admin, app: App) -> Response:
    await app.templates.delete(key)
    return Response(status_code=204)


@router.post("/{key}/preview", response_model=PreviewOut, responses=ERRORS,
             summary="Render a template with given variables, without storing anything")
async def preview_template(key: Key, body: PreviewRequest, _admin: Admin, app: App,
                           version: Version = None) -> JSONResponse:
    rendered = await app.templates.preview(key, version, body)
    return JSONResponse({"locale": rendered.locale, "version": rendered.version,
                         "parts": rendered.all_parts()})
