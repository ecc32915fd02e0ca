"""Routes of `/api/notifications` (the preference routes live in `preferences.py`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from tidings.api import create_edge
from tidings.api.deps import App, Caller
from tidings.api.params import Cursor
from tidings.api.schemas import (
    AudienceOut,
    BatchIn,
    BatchOut,
    BroadcastOut,
    NotificationOut,
    NotificationPage,
    error_responses,
)
from tidings.domain.errors import PayloadTooLarge
from tidings.domain.inputs import IDEMPOTENCY_KEY_PATTERN, Name, NotificationDraft
from tidings.domain.model import Status
from tidings.domain.notification import Accepted, BatchItem, Created, InboxFilter
from tidings.services.bulk import MAX_ITEMS
from tidings.support.tracing import SpanKind

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)
BATCH_ERRORS = error_responses(400, 401, 403, 413, 422, 429, 503)
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", description="1-255 printable ASCII characters",
    # Documented only: the creation service judges the key (after the body), naming the
    # header in its 422.
    json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN})]
CREATE_ERRORS = error_responses(400, 401, 403, 413, 422, 429, 503)


class CreateRoute(APIRoute):
    """`POST /api/notifications`: FastAPI documents the operation from the endpoint's
    signature, but the requests are served by the create edge (`create_edge.py`), which
    the lean path (`fast_create.py`, ahead of FastAPI, where most creates are answered)
    serves them by too: one admission and one answer, two transports."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _serve_create


async def _serve_create(request: Request) -> Response:
    services = request.app.state.services
    headers = request.headers
    answer = await create_edge.answer(
        services.tokens, services.creation, await request.body(),
        is_json=create_edge.declares_json(headers.get("content-type")),
        authorization=headers.get("authorization"), key=headers.get("idempotency-key"),
        traces=services.traces, traceparent=headers.get("traceparent"))
    return Response(answer.body, answer.status, answer.headers, create_edge.JSON)


# The operation as documented (a docstring here would become its OpenAPI description);
# never called: `CreateRoute` serves it.
async def create_notification(
    draft: NotificationDraft,
    caller: Caller,
    app: App,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    raise NotImplementedError


router.add_api_route(
    "", create_notification, methods=["POST"], route_class_override=CreateRoute,
    status_code=201,
    responses={201: {"model": NotificationOut}, 202: {"model": AudienceOut | BroadcastOut},
               **CREATE_ERRORS},
    summary="Notify one user (201), a list of users, a channel's subscribers or everyone "
            "(202)",
)


@router.post(
    "/batch",
    response_model=BatchOut,
    responses=BATCH_ERRORS,
    summary="Create up to 1,000 notifications at once, each answered in order",
)
async def create_batch(
    batch: BatchIn,
    caller: Caller,
    app: App,
    idempotency_key: IdempotencyKey = None,
    traceparent: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    if len(batch.items) > MAX_ITEMS:
        raise PayloadTooLarge(f"at most {MAX_ITEMS} items per request", field="items")
    # One trace for the request: its notifications' deliveries all continue it.
    with app.traces.span("POST /api/notifications/batch", parent=traceparent,
                         kind=SpanKind.SERVER):
        results = await app.bulk.create_many(caller, batch.items, idempotency_key)
    return JSONResponse({"results": [_result(item) for item in results]})


def _result(item: BatchItem) -> dict[str, Any]:
    if isinstance(item, Created):
        return {"status": 201, "notification": item.notification.to_json()}
    if isinstance(item, Accepted):
        return {"status": 202, **item.body()}
    return {"status": 422, "error": item.body()}


@router.get("", response_model=NotificationPage, responses=ERRORS,
            summary="The caller's notifications, newest first")
async def list_notifications(
    caller: Caller,
    app: App,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
    status: Status | None = None,
    unread: bool = False,
    channel: Annotated[Name | None, Query()] = None,
    type: Annotated[Name | None, Query()] = None,
    archived: bool = False,
) -> JSONResponse:
    filters = InboxFilter(status=status.value if status else None, unread=unread,
                          channel=channel, type=type, archived=archived)
    page = await app.inbox.page(caller, filters, limit, cursor)
    return JSONResponse({"items": [item.to_json() for item in page.items],
                         "next_cursor": page.next_cursor, "unread_count": page.unread_count,
                         "unseen_count": page.unseen_count})


@router.get("/{notification_id}", response_model=NotificationOut, responses=ERRORS)
async def get_notification(notification_id: str, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse((await app.inbox.get(caller, notification_id)).to_json())


@router.put("/{notification_id}/read", response_model=NotificationOut, responses=ERRORS,
            summary="Mark as read (idempotent)")
async def mark_read(notification_id: str, caller: Caller, app: App) -> JSONResponse:
    return JSONResponse((await app.inbox.mark_read(caller, notification_id)).to_json())


@router.delete("/{notification_id}", status_code=204, responses=ERRORS)
async def delete_notification(notification_id: str, caller: Caller, app: App) -> Response:
    await app.inbox.delete(caller, notification_id)
    return Response(status_code=204)
