"""Routes of producer-managed topics: `/api/channels` (a service or an admin: anyone else
403) and the caller's own `/api/subscriptions`. The rules: `services/topics.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from tidings.api.deps import App, Caller
from tidings.api.operator_schemas import (
    ChannelPageOut,
    SubscriberCountsOut,
    SubscriberPageOut,
    SubscriptionList,
)
from tidings.api.params import Limit
from tidings.api.schemas import error_responses
from tidings.domain.inputs import Name
from tidings.domain.topics import NAME_CURSOR_PATTERN, SubscriberChange

router = APIRouter(tags=["topics"])

ERRORS = error_responses(400, 401, 403, 413, 422, 503)
Channel = Annotated[Name, Path(description="A topic name, as in the Socket.IO `subscribe`")]
NameCursor = Annotated[str | None, Query(
    max_length=1360, pattern=NAME_CURSOR_PATTERN,
    description="`next_cursor` of the previous page (opaque; any value of this form is a "
                "place in the list)")]


@router.put("/api/channels/{channel}/subscribers", response_model=SubscriberCountsOut,
            responses=error_responses(400, 401, 403, 409, 413, 422, 503),
            summary="Subscribe users to a topic and unsubscribe others (at most 10,000 ids "
                    "in all); 409 naming the users it would take past the per-user cap")
async def change_subscribers(channel: Channel, change: SubscriberChange, caller: Caller,
                             app: App) -> JSONResponse:
    counts = await app.topics.change(caller, channel, change)
    return JSONResponse(counts.to_json())


@router.get("/api/channels/{channel}/subscribers", response_model=SubscriberPageOut,
            responses=ERRORS, summary="A topic's subscribers, by user id")
async def list_subscribers(channel: Channel, caller: Caller, app: App, limit: Limit = 50,
                           cursor: NameCursor = None) -> JSONResponse:
    page = await app.topics.subscribers(caller, channel, limit, cursor)
    return JSONResponse({"items": [item.to_json() for item in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/api/channels", response_model=ChannelPageOut, responses=ERRORS,
            summary="Topics that have subscribers, by name, with how many")
async def list_channels(caller: Caller, app: App, limit: Limit = 50,
                        cursor: NameCursor = None) -> JSONResponse:
    page = await app.topics.channels(caller, limit, cursor)
    return JSONResponse({"items": [item.to_json() for item in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/api/subscriptions", response_model=SubscriptionList, responses=ERRORS,
            summary="The caller's own topic subscriptions (theirs or a producer's), by "
                    "channel")
async def list_own_subscriptions(caller: Caller, app: App) -> JSONResponse:
    items = await app.topics.subscriptions_of(caller)
    return JSONResponse({"items": [item.to_json() for item in items]})
