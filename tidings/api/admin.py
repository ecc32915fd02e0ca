"""Routes of `/api/admin`: deliveries and dead letters, webhook registrations, who is
connected. Every route
needs the role `admin` (any other caller: 403; no token: 401)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from tidings.api.deps import App, Caller
from tidings.api.operator_schemas import (
    ConnectionsOut,
    DeliveryDetailOut,
    DeliveryPageOut,
    ReplayCountOut,
    WebhookCreatedOut,
    WebhookPageOut,
)
from tidings.api.params import Cursor, DeliveryCursor, Limit
from tidings.api.schemas import error_responses
from tidings.domain.connections import MAX_USERS
from tidings.domain.dead_letters import (
    DeliveryFilter,
    DeliveryMedium,
    ReplayRequest,
    parse_instant_field,
)
from tidings.domain.errors import Forbidden
from tidings.domain.inputs import UserId
from tidings.domain.model import DeliveryStatus, Principal
from tidings.domain.webhook import WebhookDraft

ADMIN = "admin"

router = APIRouter(prefix="/api/admin", tags=["admin"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)


async def admin(caller: Caller) -> Principal:
    if ADMIN not in caller.roles:
        raise Forbidden("this needs the role 'admin'")
    return caller


Admin = Annotated[Principal, Depends(admin)]


@router.get("/deliveries", response_model=DeliveryPageOut, responses=ERRORS,
            summary="Deliveries, most recently changed first")
async def list_deliveries(
    _admin: Admin,
    app: App,
    status: DeliveryStatus | None = None,
    medium: DeliveryMedium | None = None,
    user_id: Annotated[UserId | None, Query()] = None,
    since: Annotated[str | None, Query(
        max_length=64, description="ISO 8601 (no offset: UTC); on `updated_at`",
        # Documented only: judged by `parse_instant_field`, which names the field.
        json_schema_extra={"format": "date-time"})] = None,
    limit: Limit = 20,
    cursor: DeliveryCursor = None,
) -> JSONResponse:
    filters = DeliveryFilter(status=status, medium=medium, user_id=user_id,
                             since=parse_instant_field(since, "since"))
    page = await app.dead_letters.page(filters, limit, cursor)
    return JSONResponse({"items": [item.to_json() for item in page.items],
                         "next_cursor": page.next_cursor})


@router.post("/deliveries/replay", response_model=ReplayCountOut, responses=ERRORS,
             summary="Replay dead letters by filter (at most 10,000 per call)")
async def replay_deliveries(body: ReplayRequest, _admin: Admin, app: App) -> JSONResponse:
    outcome = await app.dead_letters.replay_many(body.to_filter(), dry_run=body.dry_run)
    return JSONResponse(outcome.to_json())


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetailOut, responses=ERRORS,
            summary="One delivery with its attempt history")
async def get_delivery(delivery_id: str, _admin: Admin, app: App) -> JSONResponse:
    return JSONResponse((await app.dead_letters.detail(delivery_id)).to_json())


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryDetailOut,
             responses=error_responses(401, 403, 404, 409, 503),
             summary="Put one dead letter back in the queue")
async def replay_delivery(delivery_id: str, _admin: Admin, app: App) -> JSONResponse:
    return JSONResponse((await app.dead_letters.replay(delivery_id)).to_json())


@router.post("/webhooks", status_code=201, response_model=WebhookCreatedOut, responses=ERRORS,
             summary="Register a webhook (the answer alone shows its secret)")
async def create_webhook(draft: WebhookDraft, caller: Admin, app: App) -> JSONResponse:
    hook = await app.webhooks.register(caller, draft)
    return JSONResponse(hook.to_json(with_secret=True), status_code=201)


@router.get("/webhooks", response_model=WebhookPageOut, responses=ERRORS,
            summary="Webhook registrations, newest first, without secrets")
async def list_webhooks(
    _admin: Admin, app: App, limit: Limit = 20, cursor: Cursor = None
) -> JSONResponse:
    page = await app.webhooks.page(limit, cursor)
    return JSONResponse({"items": [hook.to_json() for hook in page.items],
                         "next_cursor": page.next_cursor})


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=ERRORS)
async def delete_webhook(webhook_id: str, _admin: Admin, app: App) -> Response:
    await app.webhooks.delete(webhook_id)
    return Response(status_code=204)


@router.get("/connections", response_model=ConnectionsOut, responses=error_responses(401, 403, 422),
            summary="Open sockets on every node, and whose")
async def connections(
    _admin: Admin, app: App,
    limit: Annotated[int, Query(ge=1, le=MAX_USERS,
                                description="users listed per node")] = MAX_USERS,
) -> JSONResponse:
    return JSONResponse((await app.connections.overview(limit)).to_json())
