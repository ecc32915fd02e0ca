"""Routes of `/api/devices` (push devices of the caller) and the VAPID public key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from tidings.api.deps import App, Caller
from tidings.api.schemas import DeviceList, DeviceOut, VapidKeyOut, error_responses
from tidings.domain.device import DeviceInput

router = APIRouter(tags=["devices"])
ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)


@router.post("/api/devices", status_code=201, response_model=DeviceOut,
             responses={200: {"model": DeviceOut}, **ERRORS},
             summary="Register a device (201); a known token or endpoint moves to this "
                     "user and is enabled again (200)")
async def register_device(draft: DeviceInput, caller: Caller, app: App) -> JSONResponse:
    outcome = await app.devices.register(caller, draft)
    return JSONResponse(outcome.device.to_json(), status_code=201 if outcome.created else 200)


@router.get("/api/devices", response_model=DeviceList, responses=ERRORS,
            summary="The caller's devices, oldest first")
async def list_devices(caller: Caller, app: App) -> JSONResponse:
    devices = await app.devices.of_user(caller)
    return JSONResponse({"items": [device.to_json() for device in devices]})


@router.delete("/api/devices/{device_id}", status_code=204, responses=ERRORS)
async def delete_device(device_id: Annotated[str, Path(max_length=64)], caller: Caller,
                        app: App) -> Response:
    await app.devices.delete(caller, device_id)
    return Response(status_code=204)


@router.get("/api/push/vapid-public-key", response_model=VapidKeyOut,
            responses=error_responses(503),
            summary="The VAPID public key for `pushManager.subscribe` (null without Web Push)")
async def vapid_public_key(app: App) -> JSONResponse:
    return JSONResponse({"public_key": app.devices.vapid_public_key()})
