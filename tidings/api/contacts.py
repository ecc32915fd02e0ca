"""Routes of `/api/users/{user_id}/contact`: a user's email address, locale, zone and quiet
hours (`me` names the caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from tidings.api.deps import App, Caller
from tidings.api.schemas import ContactOut, error_responses
from tidings.domain.contact import ContactInput
from tidings.domain.inputs import Text

router = APIRouter(prefix="/api/users", tags=["contacts"])
ERRORS = error_responses(400, 401, 404, 413, 422, 503)
UserPath = Annotated[Text, Path(min_length=1, max_length=255)]


@router.get("/{user_id}/contact", response_model=ContactOut, responses=ERRORS,
            summary="A user's contact (404 if none, or if it is not the caller's to see)")
async def get_contact(user_id: UserPath, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse((await app.contacts.get(caller, user_id)).to_json())


@router.put("/{user_id}/contact", response_model=ContactOut, responses=ERRORS,
            summary="Create or update a contact; fields left out keep their value, null "
                    "clears one")
async def put_contact(user_id: UserPath, body: ContactInput, caller: Caller,
                      app: App) -> JSONResponse:
    return JSONResponse((await app.contacts.put(caller, user_id, body.change())).to_json())
