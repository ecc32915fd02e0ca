"""Routes of `/api/admin/types`: the catalogue of notification types (contract section
11). Every route needs the role `admin` (any other caller: 403; no token: 401)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from tidings.api.admin import Admin
from tidings.api.deps import App
from tidings.api.operator_schemas import TypeOut, TypePageOut
from tidings.api.params import Limit
from tidings.api.schemas import error_responses
from tidings.domain.catalogue import TYPE_CURSOR_PATTERN, TypeDraft
from tidings.domain.fields import NAME_PATTERN

router = APIRouter(prefix="/api/admin/types", tags=["types"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)
# Channels and types are names (`domain/fields.py`): anything else is refused (422) on
# PUT, and names no type (404) on GET and DELETE.
NameInPath = Annotated[str, Path(max_length=100)]
NewName = Annotated[str, Path(max_length=100, pattern=f"^{NAME_PATTERN.pattern}$")]
# The path says `{type}`, as the contract does; the argument may not shadow the builtin.
TypeInPath = Annotated[str, Path(alias="type", max_length=100)]
NewType = Annotated[str, Path(alias="type", max_length=100,
                              pattern=f"^{NAME_PATTERN.pattern}$")]
TypeCursor = Annotated[str | None, Query(
    max_length=512, pattern=TYPE_CURSOR_PATTERN,
    description="`next_cursor` of the previous page (opaque)")]


@router.put("/{channel}/{type}", response_model=TypeOut, responses=ERRORS,
            summary="Create or replace a type (fields left out take their defaults)")
async def put_type(channel: NewName, type_name: NewType, draft: TypeDraft, caller: Admin,
                   app: App) -> JSONResponse:
    return JSONResponse((await app.types.put(caller, channel, type_name, draft)).to_json())


@router.get("", response_model=TypePageOut, responses=ERRORS,
            summary="The catalogue, by channel and type")
async def list_types(_admin: Admin, app: App, limit: Limit = 20,
                     cursor: TypeCursor = None) -> JSONResponse:
    page = await app.types.page(limit, cursor)
    return JSONResponse({"items": [item.to_json() for item in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/{channel}/{type}", response_model=TypeOut, responses=ERRORS,
            summary="One type of the catalogue")
async def get_type(channel: NameInPath, type_name: TypeInPath, _admin: Admin,
                   app: App) -> JSONResponse:
    return JSONResponse((await app.types.get(channel, type_name)).to_json())


@router.delete("/{channel}/{type}", status_code=204, responses=ERRORS,
               summary="Remove a type: creates of it work as for any type not catalogued")
async def delete_type(channel: NameInPath, type_name: TypeInPath, _admin: Admin,
                      app: App) -> Response:
    await app.types.delete(channel, type_name)
    return Response(status_code=204)
