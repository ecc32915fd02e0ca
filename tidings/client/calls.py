"""Each API operation as data: which request to send and how to read its answer. The
sync and async clients differ only in how they send a `Call`, so the contract's paths and
shapes are written once, here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tidings.client.catalogue import NotificationType, TypePage
from tidings.client.models import (
    BatchResult,
    CreateResult,
    Notification,
    NotificationRequest,
    Preference,
    batch_results,
    create_result,
)

T = TypeVar("T")
BASE = "/api/notifications"
TYPES = "/api/admin/types"


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request; `idempotency_key` is sent on every attempt of the call, so a retry
    after a lost answer returns the first result instead of creating a second one."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str | int] | None = None
    idempotency_key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the caller's notifications, newest first."""

    items: list[Notification]
    next_cursor: str | None
    unread_count: int
    unseen_count: int = 0


def _key(given: str | None) -> str:
    return given if given is not None else str(uuid.uuid4())


def _path_id(notification_id: str) -> str:
    return f"{BASE}/{quote(notification_id, safe='')}"


def notify(request: NotificationRequest, idempotency_key: str | None) -> Call[CreateResult]:
    return Call("POST", BASE, lambda r: create_result(r.status_code, r.json()),
                json=request.to_json(), idempotency_key=_key(idempotency_key))


def notify_many(requests: Iterable[NotificationRequest | Mapping[str, Any]],
                idempotency_key: str | None) -> Call[list[BatchResult]]:
    items = [r.to_json() if isinstance(r, NotificationRequest) else dict(r) for r in requests]
    return Call("POST", f"{BASE}/batch", lambda r: batch_results(r.json()),
                json={"items": items}, idempotency_key=_key(idempotency_key))


def page(limit: int, cursor: str | None, filters: Mapping[str, str | bool | None]
         ) -> Call[Page]:
    params: dict[str, str | int] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    for name, value in filters.items():
        if value is True:
            params[name] = "true"
        elif value not in (None, False):
            params[name] = str(value)
    return Call("GET", BASE, _decode_page, params=params)


def get(notification_id: str) -> Call[Notification]:
    return Call("GET", _path_id(notification_id), _decode_notification)


def mark_read(notification_id: str) -> Call[Notification]:
    return Call("PUT", f"{_path_id(notification_id)}/read", _decode_notification)


def delete(notification_id: str) -> Call[None]:
    return Call("DELETE", _path_id(notification_id), lambda _r: None)


def read_all(channel: str | None, type: str | None) -> Call[int]:
    body = {name: value for name, value in (("channel", channel), ("type", type))
            if value is not None}
    return Call("POST", f"{BASE}/read-all", _decode_count, json=body)


def mark_seen(ids: Iterable[str] | None) -> Call[int]:
    return Call("POST", f"{BASE}/seen", _decode_count,
                json={} if ids is None else {"ids": list(ids)})


def archive(notification_id: str, archived: bool) -> Call[Notification]:
    action = "archive" if archived else "unarchive"
    return Call("POST", f"{_path_id(notification_id)}/{action}", _decode_notification)


def cancel(notification_id: str) -> Call[Notification]:
    return Call("POST", f"{_path_id(notification_id)}/cancel", _decode_notification)


def cancel_by_key(idempotency_key: str) -> Call[int]:
    return Call("POST", f"{BASE}/cancel", _decode_count,
                json={"idempotency_key": idempotency_key})


def _decode_count(response: httpx.Response) -> int:
    return int(response.json()["count"])


def preferences() -> Call[list[Preference]]:
    return Call("GET", f"{BASE}/preferences", _decode_preferences)


def set_preference(preference: Preference) -> Call[Preference]:
    return Call("PUT", f"{BASE}/preferences", lambda r: Preference.from_json(r.json()),
                json=preference.to_json())


def set_preferences(items: Iterable[Preference]) -> Call[list[Preference]]:
    return Call("POST", f"{BASE}/preferences/bulk", _decode_preferences,
                json={"items": [item.to_json() for item in items]})


def preference_link(user_id: str) -> Call[str]:
    return Call("GET", f"/api/users/{quote(user_id, safe='')}/preference-link",
                lambda r: str(r.json()["url"]))


def _decode_notification(response: httpx.Response) -> Notification:
    return Notification.from_json(response.json())


def _decode_page(response: httpx.Response) -> Page:
    body = response.json()
    return Page([Notification.from_json(item) for item in body["items"]],
                body.get("next_cursor"), int(body.get("unread_count") or 0),
                int(body.get("unseen_count") or 0))


def _decode_preferences(response: httpx.Response) -> list[Preference]:
    return [Preference.from_json(item) for item in response.json()["items"]]


# -- the types catalogue (admin) ----------------------------------------------------------


def _type_path(channel: str, type_: str) -> str:
    return f"{TYPES}/{quote(channel, safe='')}/{quote(type_, safe='')}"


def _decode_type(response: httpx.Response) -> NotificationType:
    return NotificationType.from_json(response.json())


def put_type(channel: str, type_: str, body: dict[str, Any]) -> Call[NotificationType]:
    return Call("PUT", _type_path(channel, type_), _decode_type, json=body)


def get_type(channel: str, type_: str) -> Call[NotificationType]:
    return Call("GET", _type_path(channel, type_), _decode_type)


def delete_type(channel: str, type_: str) -> Call[None]:
    return Call("DELETE", _type_path(channel, type_), lambda _r: None)


def types_page(limit: int, cursor: str | None) -> Call[TypePage]:
    params: dict[str, str | int] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor

    def decode(response: httpx.Response) -> TypePage:
        body = response.json()
        return TypePage([NotificationType.from_json(item) for item in body["items"]],
                        body.get("next_cursor"))

    return Call("GET", TYPES, decode, params=params)
