"""The types catalogue's methods, for both clients (an admin token): the blocking ones
`TidingsClient` takes in, and the awaited ones of `AsyncTidingsClient`."""

from __future__ import annotations

from typing import Any, TypeVar

from tidings.client import calls
from tidings.client.calls import Call
from tidings.client.catalogue import NotificationType, TypePage, type_body

T = TypeVar("T")


class TypeMethods:
    """The blocking client's types-catalogue methods (role `admin`)."""

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    def put_type(self, channel: str, type: str, *, name: dict[str, str],
                 description: dict[str, str] | None = None, required: bool = False,
                 default_media: list[str] | None = None,
                 escalation: list[dict[str, Any]] | None = None,
                 digest: dict[str, Any] | None = None) -> NotificationType:
        """Create or replace the whole type (what is left out takes its default)."""
        return self._send(calls.put_type(channel, type, type_body(
            name, description, required, default_media, escalation, digest)))

    def get_type(self, channel: str, type: str) -> NotificationType:
        return self._send(calls.get_type(channel, type))

    def types(self, *, limit: int = 20, cursor: str | None = None) -> TypePage:
        return self._send(calls.types_page(limit, cursor))

    def delete_type(self, channel: str, type: str) -> None:
        self._send(calls.delete_type(channel, type))


class AsyncTypeMethods:
    """As `TypeMethods`, awaited."""

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def put_type(self, channel: str, type: str, *, name: dict[str, str],
                       description: dict[str, str] | None = None, required: bool = False,
                       default_media: list[str] | None = None,
                       escalation: list[dict[str, Any]] | None = None,
                       digest: dict[str, Any] | None = None) -> NotificationType:
        return await self._send(calls.put_type(channel, type, type_body(
            name, description, required, default_media, escalation, digest)))

    async def get_type(self, channel: str, type: str) -> NotificationType:
        return await self._send(calls.get_type(channel, type))

    async def types(self, *, limit: int = 20, cursor: str | None = None) -> TypePage:
        return await self._send(calls.types_page(limit, cursor))

    async def delete_type(self, channel: str, type: str) -> None:
        await self._send(calls.delete_type(channel, type))
