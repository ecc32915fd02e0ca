"""Routes of `/api/admin/channels/{channel}/feed`: a channel's team feed (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from tidings.api.admin import Admin
from tidings.api.deps import App
from tidings.api.schemas import FeedOut, error_responses
from tidings.domain.feed import FeedDraft
from tidings.domain.fields import Name

router = APIRouter(prefix="/api/admin/channels", tags=["admin"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)
Channel = Annotated[Name, Path()]


@router.put("/{channel}/feed", response_model=FeedOut, responses=ERRORS,
            summary="Post every notification of a channel to a chat incoming webhook")
async def put_feed(channel: Channel, draft: FeedDraft, _admin: Admin,
                   app: App) -> JSONResponse:
    feed = await app.feeds.put(channel, draft)
    return JSONResponse(feed.to_json(reveal=True))


@router.get("/{channel}/feed", response_model=FeedOut, responses=ERRORS,
            summary="A channel's team feed (the webhook URL shown by its origin only)")
async def get_feed(channel: Channel, _admin: Admin, app: App) -> JSONResponse:
    return JSONResponse((await app.feeds.get(channel)).to_json())


@router.delete("/{channel}/feed", status_code=204, responses=ERRORS,
               summary="Stop posting a channel's notifications to its feed")
async def delete_feed(channel: Channel, _admin: Admin, app: App) -> Response:
    await app.feeds.delete(channel)
    return Response(status_code=204)
