"""Routes of `/api/admin/channels/{channel}/feed` (a channel's team feed) and
`/api/admin/feeds` (every feed, by channel): admin only (no token 401, another role 403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tidings.api.admin import Admin
from tidings.api.deps import App
from tidings.api.operator_schemas import FeedOut
from tidings.api.params import Limit
from tidings.api.schemas import error_responses
from tidings.domain.feed import FEED_CURSOR_PATTERN, FeedDraft
from tidings.domain.fields import Name

router = APIRouter(prefix="/api/admin", tags=["admin"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)
Channel = Annotated[Name, Path()]
FeedCursor = Annotated[str | None, Query(
    max_length=100, pattern=FEED_CURSOR_PATTERN,
    description="`next_cursor` of the previous page (opaque; any value of this form is a "
                "place in the list)")]


class FeedPageOut(BaseModel):
    """The list's answer (here rather than in `schemas.py`, which is full)."""

    items: list[FeedOut]
    next_cursor: str | None


@router.put("/channels/{channel}/feed", response_model=FeedOut, responses=ERRORS,
            summary="Post every notification of a channel to a chat incoming webhook")
async def put_feed(channel: Channel, draft: FeedDraft, _admin: Admin,
                   app: App) -> JSONResponse:
    feed = await app.feeds.put(channel, draft)
    return JSONResponse(feed.to_json(reveal=True))


@router.get("/channels/{channel}/feed", response_model=FeedOut, responses=ERRORS,
            summary="A channel's team feed (the webhook URL shown by its origin only)")
async def get_feed(channel: Channel, _admin: Admin, app: App) -> JSONResponse:
    return JSONResponse((await app.feeds.get(channel)).to_json())


@router.get("/feeds", response_model=FeedPageOut,
            responses=error_responses(401, 403, 422, 503),
            summary="Every team feed, by channel (webhook URLs shown by their origin only)")
async def list_feeds(_admin: Admin, app: App, limit: Limit = 20,
                     cursor: FeedCursor = None) -> JSONResponse:
    page = await app.feeds.page(limit, cursor)
    return JSONResponse({"items": [feed.to_json() for feed in page.items],
                         "next_cursor": page.next_cursor})


@router.delete("/channels/{channel}/feed", status_code=204, responses=ERRORS,
               summary="Stop posting a channel's notifications to its feed")
async def delete_feed(channel: Channel, _admin: Admin, app: App) -> Response:
    await app.feeds.delete(channel)
    return Response(status_code=204)
