"""Routes of the inbox states and of cancel (DESIGN section 12): read all, seen, archive
and unarchive (a user, own notifications), cancel by id or by Idempotency-Key (service or
admin)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidings.api.deps import App, Caller
from tidings.api.schemas import CountOut, NotificationOut, error_responses
from tidings.domain.inbox_inputs import CancelByKeyInput, ReadAllInput, SeenInput

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

USER_ERRORS = error_responses(400, 401, 422, 503)
ONE_ERRORS = error_responses(401, 404, 503)
CANCEL_ERRORS = error_responses(401, 403, 404, 409, 503)
KEY_ERRORS = error_responses(400, 401, 403, 422, 503)


@router.post("/read-all", response_model=CountOut, responses=USER_ERRORS,
             summary="Mark every unread notification (of a channel, a type) read")
async def read_all(caller: Caller, app: App, body: ReadAllInput | None = None) -> JSONResponse:
    body = body or ReadAllInput()
    count = await app.states.read_all(caller, body.channel, body.type)
    return JSONResponse({"count": count})


@router.post("/seen", response_model=CountOut, responses=USER_ERRORS,
             summary="Mark these notifications (none named: all) seen")
async def seen(caller: Caller, app: App, body: SeenInput | None = None) -> JSONResponse:
    ids = body.ids if body is not None else None
    return JSONResponse({"count": await app.states.seen(caller, ids)})


@router.post("/cancel", response_model=CountOut, responses=KEY_ERRORS,
             summary="Cancel every not-yet-due copy of the caller's create under a key")
async def cancel_by_key(body: CancelByKeyInput, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse({"count": await app.cancels.cancel_by_key(caller,
                                                                  body.idempotency_key)})


@router.post("/{notification_id}/archive", response_model=NotificationOut,
             responses=ONE_ERRORS, summary="Archive (hidden from the list but on request)")
async def archive(notification_id: str, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse((await app.states.archive(caller, notification_id)).to_json())


@router.post("/{notification_id}/unarchive", response_model=NotificationOut,
             responses=ONE_ERRORS, summary="Bring an archived notification back")
async def unarchive(notification_id: str, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse((await app.states.unarchive(caller, notification_id)).to_json())


@router.post("/{notification_id}/cancel", response_model=NotificationOut,
             responses=CANCEL_ERRORS, summary="Cancel a notification scheduled for later")
async def cancel(notification_id: str, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse((await app.cancels.cancel(caller, notification_id)).to_json())
