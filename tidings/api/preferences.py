"""Routes of `/api/notifications/preferences`: the caller's own media preferences."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidings.api.deps import App, Caller
from tidings.api.schemas import PreferenceList, PreferenceOut, error_responses
from tidings.domain.inputs import PreferenceBatch, PreferenceInput

router = APIRouter(prefix="/api/notifications/preferences", tags=["preferences"])
ERRORS = error_responses(400, 401, 413, 422, 503)


@router.get("", response_model=PreferenceList, responses=ERRORS)
async def list_preferences(caller: Caller, app: App) -> JSONResponse:
    stored = await app.preferences.of_user(caller.user_id)
    return JSONResponse({"items": [item.to_json() for item in stored]})


@router.put("", response_model=PreferenceOut, responses=ERRORS,
            summary="Store one preference; flags left out keep their value")
async def put_preference(item: PreferenceInput, caller: Caller, app: App) -> JSONResponse:
    (stored,) = await app.preferences.save(caller.user_id, [item])
    return JSONResponse(stored.to_json())


@router.post("/bulk", response_model=PreferenceList, responses=ERRORS,
             summary="Store several preferences, all or nothing")
async def put_preferences(batch: PreferenceBatch, caller: Caller, app: App) -> JSONResponse:
    stored = await app.preferences.save(caller.user_id, batch.items)
    return JSONResponse({"items": [item.to_json() for item in stored]})
