"""The templates creates name are cached per process: a second create with a template
asks the database nothing for it, and a save or a delete is honoured at once on its own
node (a key cached as absent included) and on another node once the invalidation
arrives (PostgreSQL's LISTEN/NOTIFY here, no Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tidings.config.settings import Settings

pytestmark = pytest.mark.both_databases
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

ADMIN = ("ops", "admin")
EVENT_TIMEOUT = 10.0


def welcome(title: str) -> dict[str, Any]:
    return {"key": "welcome", "default_locale": "en",
            "variants": {"en": {"title": title, "message": "Hello {{ name }}"}}}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, workers_in_serve=False)


async def create(server: RunningServer) -> tuple[int, Any]:
    async with server.http("svc", "service") as http:
        answer = await http.post("/api/notifications", json={
            "user_id": "ann", "type": "greeting", "template": "welcome",
            "variables": {"name": "Ann"}})
    body = answer.json()
    return answer.status_code, body.get("title") if answer.status_code == 201 else body


async def test_saves_and_deletes_are_honoured_at_once_on_the_node(
        server: RunningServer) -> None:
    status, body = await create(server)
    assert status == 422 and body["error"]["field"] == "template"  # cached as absent
    async with server.http(*ADMIN) as ops:
        assert (await ops.post("/api/admin/templates", json=welcome("Hi {{ name }}"))
                ).status_code == 201
        assert await create(server) == (201, "Hi Ann")
        hits = server.metric("tidings_cache_hits_total", cache="templates") or 0.0
        assert await create(server) == (201, "Hi Ann")
        assert server.metric("tidings_cache_hits_total", cache="templates") == hits + 1
        assert (await ops.put("/api/admin/templates/welcome", json=welcome("Hey {{ name }}"))
                ).status_code == 200
        assert await create(server) == (201, "Hey Ann")
        assert (await ops.delete("/api/admin/templates/welcome")).status_code == 204
    status, body = await create(server)
    assert status == 422 and body["error"]["field"] == "template"


@on_postgresql
async def test_a_new_version_reaches_another_node(database_url: str) -> None:
    settings = make_settings(database_url, workers_in_serve=False)
    one = await start_server(settings)
    two = await start_server(settings)
    try:
        async with one.http(*ADMIN) as ops:
            assert (await ops.post("/api/admin/templates", json=welcome("Hi {{ name }}"))
                    ).status_code == 201
            assert await create(two) == (201, "Hi Ann")  # cached on two
            assert (await ops.put("/api/admin/templates/welcome",
                                  json=welcome("Hey {{ name }}"))).status_code == 200

        async def honoured() -> None:
            while await create(two) != (201, "Hey Ann"):  # noqa: ASYNC110 - polls
                await asyncio.sleep(0.05)

        await asyncio.wait_for(honoured(), EVENT_TIMEOUT)
    finally:
        await one.stop()
        await two.stop()
