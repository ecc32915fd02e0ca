"""The in-process cache of preferences: a create for a user reads their rows once, not at
every create; a change through this node (the API, one-click unsubscribe) is honoured by
its next create; a change on another node sharing the database is honoured once its
invalidation arrives (over Redis, or over PostgreSQL's LISTEN/NOTIFY without Redis); and
an invalidation that never arrives is bounded by an entry's life."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import EVENT_TIMEOUT, RunningServer, make_settings, start_server, stored_media
from tests.redis_servers import RedisServer
from tidings.domain.model import Medium, utcnow
from tidings.domain.preference import PreferenceChange
from tidings.services.preference_cache import TTL_S, PreferenceCache
from tidings.services.preferences import PreferenceService
from tidings.store import preferences as preference_store
from tidings.store.database import Database
from tidings.support.metrics import Metrics

pytestmark = pytest.mark.both_databases
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

NOTE = {"channel": "billing", "type": "invoice", "title": "t", "message": "m"}
EMAIL_OFF = {"channel": "billing", "notification_type": "invoice", "email_enabled": False}


async def media_of(node: RunningServer, notification_id: str) -> set[str]:
    return await stored_media(node, notification_id)


async def create(node: RunningServer, user: str) -> set[str]:
    """The media a create for `user` got."""
    async with node.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, "user_id": user})
    assert response.status_code == 201
    return await media_of(node, response.json()["id"])


@pytest.fixture
def preference_reads(server: RunningServer) -> Iterator[list[str]]:
    """The statements that read the preferences table, as the server sends them."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and \
                "user_notification_preferences" in statement:
            seen.append(statement)

    engine = server.services.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


async def test_repeated_creates_read_a_user_s_preferences_once(
    server: RunningServer, preference_reads: list[str],
) -> None:
    for _ in range(5):
        assert await create(server, "alice") == {"in_app", "email", "push", "sms", "chat"}
    assert len(preference_reads) == 1
    assert server.metric("tidings_cache_hits_total", cache="preferences") == 4
    assert server.metric("tidings_cache_misses_total", cache="preferences") == 1


async def test_a_change_through_this_node_is_honoured_by_its_next_create(
    server: RunningServer,
) -> None:
    # cached: no rows
    assert await create(server, "alice") == {"in_app", "email", "push", "sms", "chat"}
    async with server.http("alice") as http:
        put = await http.put("/api/notifications/preferences",
                             json=EMAIL_OFF)
    assert put.status_code == 200
    assert await create(server, "alice") == {"in_app", "push", "sms", "chat"}
    async with server.http("alice") as http:
        await http.post("/api/notifications/preferences/bulk", json={"items": [
            {**EMAIL_OFF, "email_enabled": True, "push_enabled": False}]})
    assert await create(server, "alice") == {"in_app", "email", "sms", "chat"}


async def test_a_one_click_unsubscribe_is_honoured_by_the_next_create(
    server: RunningServer,
) -> None:
    assert await create(server, "bob") == {"in_app", "email", "push", "sms", "chat"}
    token = server.services.unsubscribe.token("bob", "billing", "invoice")
    async with server.http() as anon:
        done = await anon.post(f"/unsubscribe/{token}",
                               data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert await create(server, "bob") == {"in_app", "push", "sms", "chat"}


async def test_a_socket_preference_event_is_honoured_by_the_next_create(
    server: RunningServer, connect: Any,
) -> None:
    assert await create(server, "erin") == {"in_app", "email", "push", "sms", "chat"}
    erin = await connect("erin")
    ack = await erin.call("updatePreferences", {**EMAIL_OFF, "push_enabled": False})
    assert ack["ok"] is True
    assert await create(server, "erin") == {"in_app", "sms", "chat"}


class Unheard:
    """An invalidation that reaches no one (a lost message)."""

    def invalidate(self, scope: str, key: str) -> None:
        return None


async def test_an_entry_ends_after_its_life_when_no_invalidation_came(
    database_url: str,
) -> None:
    now = [1000.0]
    db = Database(database_url)
    await db.start()
    try:
        cache = PreferenceCache(Metrics(), clock=lambda: now[0])
        preferences = PreferenceService(db, cache, Unheard())

        async def media() -> frozenset[Medium]:
            async with db.begin() as conn:
                return (await preferences.media_for(conn, ["dave"], "billing",
                                                    "invoice"))["dave"]

        assert await media() == frozenset(Medium)
        # Another node's change whose message was lost.
        async with db.begin() as conn:
            await preference_store.upsert_many(
                conn, "dave", [PreferenceChange("billing", "*", email_enabled=False)],
                utcnow())
        now[0] += TTL_S - 0.5
        assert await media() == frozenset(Medium)  # still the cached "no rows"
        now[0] += 0.5
        assert await media() == {Medium.IN_APP, Medium.PUSH, Medium.SMS, Medium.CHAT}
    finally:
        await db.dispose()


async def honoured_across(one: RunningServer, two: RunningServer) -> None:
    """`two` caches carol's rows (none); she turns email off through `one`; a create on
    `two` honours it once the invalidation arrived (well before an entry's life ends)."""
    assert await create(two, "carol") == {"in_app", "email", "push", "sms", "chat"}
    async with one.http("carol") as http:
        put = await http.put("/api/notifications/preferences", json=EMAIL_OFF)
    assert put.status_code == 200

    async def honoured() -> None:
        while await create(two, "carol") != {"in_app", "push", "sms", "chat"}:  # noqa: ASYNC110 - polls
            await asyncio.sleep(0.05)

    await asyncio.wait_for(honoured(), EVENT_TIMEOUT)


@on_postgresql
async def test_a_change_on_one_node_reaches_another_over_redis(
    database_url: str, redis_server: RedisServer,
) -> None:
    settings = make_settings(database_url, redis_url=redis_server.url, redis_prefix="t")
    one = await start_server(settings)
    two = await start_server(settings)
    try:
        await honoured_across(one, two)
    finally:
        await one.stop()
        await two.stop()


@on_postgresql
async def test_a_change_on_one_node_reaches_another_over_postgresql_without_redis(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    one = await start_server(settings)
    two = await start_server(settings)
    try:
        await honoured_across(one, two)
    finally:
        await one.stop()
        await two.stop()
