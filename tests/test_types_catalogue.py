"""The types catalogue (contract section 11): the admin routes and their refusals, and
what a catalogued type changes for a create: the media considered without `media`, its
digest, and a `required` type going through an opt-out (but not through a missing
address or an unconfigured provider) with no one-click unsubscribe in its emails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import EVENT_TIMEOUT, RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.redis_servers import RedisServer
from tidings.client import AsyncTidingsClient, NotFound, TidingsClient, ValidationError
from tidings.store.tables import digests

# A create without media considers every medium (unconfigured ones end `skipped`).
ALL_MEDIA = {"in_app", "email", "push", "sms", "chat"}
pytestmark = pytest.mark.both_databases
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

INVOICES = {"name": {"en": "Invoices", "de": "Rechnungen"}}


async def put_type(server: RunningServer, channel: str, type_: str,
                   body: dict[str, Any]) -> dict[str, Any]:
    async with server.http("root", "admin") as http:
        response = await http.put(f"/api/admin/types/{channel}/{type_}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def create(server: RunningServer, **fields: Any) -> dict[str, Any]:
    body = {"user_id": "alice", "channel": "billing", "type": "invoice", "title": "Invoice",
            "message": "Your invoice", **fields}
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def media_of(note: dict[str, Any]) -> dict[str, str]:
    return {d["medium"]: d["status"] for d in note["deliveries"]}


# -- the admin routes ----------------------------------------------------------------------


async def test_put_creates_then_replaces_the_whole_type(server: RunningServer) -> None:
    full = {**INVOICES, "description": {"en-gb": "Monthly invoices"}, "required": True,
            "default_media": ["email", "in_app"],
            "escalation": [{"after_seconds": 3600, "unless": "read", "media": ["email"]}],
            "digest": {"window_seconds": 600}}
    stored = await put_type(server, "billing", "invoice", full)
    assert stored | {"updated_at": None} == {
        "channel": "billing", "type": "invoice",
        "name": {"en": "Invoices", "de": "Rechnungen"},
        "description": {"en_GB": "Monthly invoices"}, "required": True,
        "default_media": ["email", "in_app"],
        "escalation": [{"after_seconds": 3600, "unless": "read", "media": ["email"]}],
        "digest": {"key": "billing/invoice", "window_seconds": 600},
        "updated_by": "root", "updated_at": None}
    async with server.http("root", "admin") as http:
        got = await http.get("/api/admin/types/billing/invoice")
    assert got.status_code == 200 and got.json() == stored
    # A PUT replaces: what it leaves out takes its default, it does not keep the old value.
    replaced = await put_type(server, "billing", "invoice", {"name": {"fr": "Factures"}})
    assert (replaced["name"], replaced["required"], replaced["default_media"],
            replaced["escalation"], replaced["digest"], replaced["description"]) == (
        {"fr": "Factures"}, False, None, None, None, None)


async def test_list_pages_by_channel_and_type_and_delete_removes(
    server: RunningServer,
) -> None:
    for channel, type_ in [("orders", "shipped"), ("billing", "refund"),
                           ("billing", "invoice")]:
        await put_type(server, channel, type_, INVOICES)
    async with server.http("root", "admin") as http:
        first = (await http.get("/api/admin/types", params={"limit": 2})).json()
        assert [(t["channel"], t["type"]) for t in first["items"]] == [
            ("billing", "invoice"), ("billing", "refund")]
        second = (await http.get("/api/admin/types", params={
            "limit": 2, "cursor": first["next_cursor"]})).json()
        assert [(t["channel"], t["type"]) for t in second["items"]] == [("orders", "shipped")]
        assert second["next_cursor"] is None
        assert (await http.delete("/api/admin/types/billing/refund")).status_code == 204
        assert (await http.get("/api/admin/types/billing/refund")).status_code == 404
        assert (await http.delete("/api/admin/types/billing/refund")).status_code == 404
        left = (await http.get("/api/admin/types")).json()
    assert [(t["channel"], t["type"]) for t in left["items"]] == [
        ("billing", "invoice"), ("orders", "shipped")]


async def test_only_admins_reach_the_catalogue(server: RunningServer) -> None:
    path = "/api/admin/types/billing/invoice"
    async with server.http() as anonymous:
        assert (await anonymous.get("/api/admin/types")).status_code == 401
        assert (await anonymous.put(path, json=INVOICES)).status_code == 401
    for roles in [(), ("service",)]:
        async with server.http("someone", *roles) as http:
            assert (await http.get("/api/admin/types")).status_code == 403
            assert (await http.put(path, json=INVOICES)).status_code == 403
            assert (await http.get(path)).status_code == 403
            assert (await http.delete(path)).status_code == 403
    async with server.http("root", "admin") as http:
        assert (await http.get(path)).status_code == 404
        assert (await http.get("/api/admin/types/no%20such/x")).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": {}}, "name"),
    ({"name": {"xx-nowhere": "X"}}, "name.xx-nowhere"),
    ({"name": {"en": "A", "EN": "B"}}, "name.EN"),
    ({"name": {"en": ""}}, "name.en"),
    ({"name": {"en": "x" * 201}}, "name.en"),
    ({**INVOICES, "description": {"zz": "x"}}, "description.zz"),
    ({**INVOICES, "required": "yes"}, "required"),
    ({**INVOICES, "default_media": ["fax"]}, "default_media.0"),
    ({**INVOICES, "default_media": []}, "default_media"),
    ({**INVOICES, "default_media": ["email", "email"]}, "default_media"),
    ({**INVOICES, "escalation": [{"after_seconds": 60, "unless": "read",
                                  "media": ["email"]}] * 4}, "escalation"),
    ({**INVOICES, "escalation": [{"after_seconds": 0, "unless": "read",
                                  "media": ["email"]}]}, "escalation.0.after_seconds"),
    ({**INVOICES, "escalation": [{"after_seconds": 604_801, "unless": "read",
                                  "media": ["email"]}]}, "escalation.0.after_seconds"),
    ({**INVOICES, "escalation": [{"after_seconds": 60, "unless": "clicked",
                                  "media": ["email"]}]}, "escalation.0.unless"),
    ({**INVOICES, "escalation": [{"after_seconds": 60, "unless": "seen",
                                  "media": []}]}, "escalation.0.media"),
    ({**INVOICES, "digest": {"window_seconds": 0}}, "digest.window_seconds"),
    ({**INVOICES, "digest": {"window_seconds": 86_401}}, "digest.window_seconds"),
    ({**INVOICES, "digest": {"key": "no spaces", "window_seconds": 5}}, "digest.key"),
    ({**INVOICES, "colour": "red"}, "colour"),
])
async def test_a_bad_type_is_a_422_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str,
) -> None:
    async with server.http("root", "admin") as http:
        response = await http.put("/api/admin/types/billing/invoice", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert (await http.get("/api/admin/types/billing/invoice")).status_code == 404


async def test_bad_names_in_the_path_and_bad_cursors_are_422(server: RunningServer) -> None:
    async with server.http("root", "admin") as http:
        bad_name = await http.put("/api/admin/types/no%20spaces/invoice", json=INVOICES)
        bad_type = await http.put("/api/admin/types/billing/" + "x" * 101, json=INVOICES)
        bad_cursor = await http.get("/api/admin/types", params={"cursor": "nothing"})
    assert bad_name.status_code == 422 and bad_name.json()["error"]["field"] == "channel"
    assert bad_type.status_code == 422 and bad_type.json()["error"]["field"] == "type"
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"


# -- creates -------------------------------------------------------------------------------


async def test_a_create_without_media_takes_the_type_s_default_media(
    server: RunningServer,
) -> None:
    await put_type(server, "billing", "invoice", {**INVOICES, "default_media": ["in_app"]})
    assert set(media_of(await create(server))) == {"in_app"}
    # The create's own media win over the type's; another type is not catalogued.
    assert set(media_of(await create(server, media=["email", "in_app"]))) == {
        "email", "in_app"}
    assert set(media_of(await create(server, type="receipt"))) == ALL_MEDIA
    # Preferences still narrow the type's media.
    async with server.http("alice") as alice:
        await alice.put("/api/notifications/preferences", json={
            "channel": "billing", "notification_type": "invoice", "in_app_enabled": False})
    assert media_of(await create(server)) == {}


@pytest.fixture
def catalogue_reads(server: RunningServer) -> Iterator[list[str]]:
    """The statements that read the types table, as the server sends them."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM types" in statement:
            seen.append(statement)

    engine = server.services.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


async def test_creates_read_the_catalogue_once_whether_the_type_is_in_it_or_not(
    server: RunningServer, catalogue_reads: list[str],
) -> None:
    for type_ in ["receipt", "receipt", "other", "receipt"]:
        await create(server, type=type_)
    assert len(catalogue_reads) == 1
    # A PUT here drops this node's copy at once: the next create reads it anew.
    await put_type(server, "billing", "receipt", {**INVOICES, "default_media": ["push"]})
    assert set(media_of(await create(server, type="receipt"))) == {"push"}
    assert set(media_of(await create(server, type="other"))) == ALL_MEDIA
    assert len(catalogue_reads) == 2
    assert server.metric("tidings_cache_misses_total", cache="types") == 2


# -- email: required types, digests ----------------------------------------------------------


@pytest.fixture
async def smtp_port(smtp: ScriptedHandler) -> AsyncIterator[int]:
    async with smtp_server(smtp) as port:
        yield port


@pytest.fixture
def smtp() -> ScriptedHandler:
    return ScriptedHandler()


@pytest.fixture
async def mailer(database_url: str, smtp_port: int) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test")
    running = await start_server(settings)
    try:
        async with running.http("accounts", "service") as http:
            for user in ("alice", "bob"):
                response = await http.put(f"/api/users/{user}/contact",
                                          json={"email": f"{user}@example.test"})
                assert response.status_code == 200
        yield running
    finally:
        await running.stop()


async def test_a_required_type_goes_through_an_opt_out_without_one_click_unsubscribe(
    mailer: RunningServer, smtp: ScriptedHandler,
) -> None:
    await put_type(mailer, "billing", "invoice", {**INVOICES, "required": True})
    # Alice turns email off for both types (through the API, as the unsubscribe link does).
    async with mailer.http("alice") as alice:
        saved = await alice.post("/api/notifications/preferences/bulk", json={"items": [
            {"channel": "billing", "notification_type": t, "email_enabled": False}
            for t in ("invoice", "newsletter")]})
    assert saved.status_code == 200
    newsletter = await create(mailer, type="newsletter", title="News")
    assert set(media_of(newsletter)) == ALL_MEDIA - {"email"}  # her opt-out applies
    invoice = await create(mailer)
    # It goes through her opt-out; not through a provider that is not configured (push).
    assert media_of(invoice) == {"in_app": "sent", "email": "pending", "push": "skipped",
                                "sms": "skipped", "chat": "skipped"}
    await asyncio.wait_for(smtp.arrived.wait(), EVENT_TIMEOUT)
    (mail,) = smtp.received
    assert mail.rcpt_tos == ["alice@example.test"] and mail.message["Subject"] == "Invoice"
    assert mail.message["List-Unsubscribe"] is None
    assert mail.message["List-Unsubscribe-Post"] is None
    # Her opt-out is stored all the same, and a normal type's email keeps its header.
    async with mailer.http("alice") as alice:
        rows = (await alice.get("/api/notifications/preferences")).json()["items"]
    assert {(r["notification_type"], r["email_enabled"]) for r in rows} == {
        ("invoice", False), ("newsletter", False)}
    smtp.arrived.clear()
    await create(mailer, user_id="bob", type="newsletter", title="News")
    await asyncio.wait_for(smtp.arrived.wait(), EVENT_TIMEOUT)
    assert smtp.received[-1].message["List-Unsubscribe"] is not None


async def test_a_required_type_does_not_go_through_a_missing_address(
    mailer: RunningServer,
) -> None:
    await put_type(mailer, "billing", "invoice", {**INVOICES, "required": True,
                                                   "default_media": ["email"]})
    note = await create(mailer, user_id="carol")  # no contact, no address
    async with mailer.http("carol") as carol:
        for _ in range(250):
            body = (await carol.get(f"/api/notifications/{note['id']}")).json()
            if media_of(body)["email"] in ("sent", "skipped", "dead"):
                break
            await asyncio.sleep(0.02)
    assert media_of(body) == {"email": "skipped"}


async def test_a_create_takes_the_type_s_digest_where_it_names_none(
    mailer: RunningServer,
) -> None:
    await put_type(mailer, "billing", "invoice", {**INVOICES, "default_media": ["email"],
                                                   "digest": {"window_seconds": 600}})
    first, second = await create(mailer), await create(mailer)
    (held,), (joined,) = first["deliveries"], second["deliveries"]
    assert held["status"] == joined["status"] == "pending"
    assert held["digest_id"] is not None and held["digest_id"] == joined["digest_id"]
    async with mailer.services.db.begin() as conn:
        keys = (await conn.execute(sa.select(digests.c.key))).scalars().all()
    assert keys == ["billing/invoice"]
    # The create's own digest wins; a scheduled create is not held by the type's.
    own = await create(mailer, digest={"key": "mine", "window_seconds": 60})
    assert own["deliveries"][0]["digest_id"] not in (None, held["digest_id"])
    later = await create(mailer, scheduled_at="2099-01-01T00:00:00Z")
    assert later["deliveries"][0]["digest_id"] is None


# -- across processes ----------------------------------------------------------------------


async def changed_across(one: RunningServer, two: RunningServer) -> None:
    """`two` caches the catalogue (empty); a PUT on `one` reaches `two`'s next creates
    once the invalidation arrived (well before the entry's life ends)."""
    assert set(media_of(await create(two))) == ALL_MEDIA
    await put_type(one, "billing", "invoice", {**INVOICES, "default_media": ["in_app"]})

    async def honoured() -> None:
        while set(media_of(await create(two))) != {"in_app"}:  # noqa: ASYNC110 - polls
            await asyncio.sleep(0.05)

    await asyncio.wait_for(honoured(), EVENT_TIMEOUT)


@on_postgresql
async def test_a_put_on_one_node_reaches_another_over_postgresql_without_redis(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    one = await start_server(settings)
    two = await start_server(settings)
    try:
        await changed_across(one, two)
    finally:
        await one.stop()
        await two.stop()


@on_postgresql
async def test_a_put_on_one_node_reaches_another_over_redis(
    database_url: str, redis_server: RedisServer,
) -> None:
    settings = make_settings(database_url, redis_url=redis_server.url, redis_prefix="t")
    one = await start_server(settings)
    two = await start_server(settings)
    try:
        await changed_across(one, two)
    finally:
        await one.stop()
        await two.stop()


# -- the Python client ---------------------------------------------------------------------


async def test_the_python_clients_manage_the_catalogue(server: RunningServer) -> None:
    token = server.token("root", "admin")
    async with AsyncTidingsClient(server.url, token) as client:
        stored = await client.put_type("billing", "invoice", name={"en": "Invoices"},
                                       required=True, default_media=["email"],
                                       digest={"window_seconds": 60})
        assert (stored.required, stored.default_media, stored.digest) == (
            True, ["email"], {"key": "billing/invoice", "window_seconds": 60})
        assert await client.get_type("billing", "invoice") == stored
        page = await client.types(limit=5)
        assert page.items == [stored] and page.next_cursor is None
        with pytest.raises(ValidationError):
            await client.put_type("billing", "invoice", name={})

    def blocking() -> None:
        with TidingsClient(server.url, token) as client:
            assert client.get_type("billing", "invoice").name == {"en": "Invoices"}
            client.delete_type("billing", "invoice")
            with pytest.raises(NotFound):
                client.get_type("billing", "invoice")

    await asyncio.to_thread(blocking)  # the server runs on this thread's loop


async def test_the_console_page_carries_the_types_section(server: RunningServer) -> None:
    async with server.http() as anyone:
        page = await anyone.get("/admin")
        script = await anyone.get("/static/tidings-types.js")
    assert page.status_code == 200 and 'id="type-form"' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "export function startTypes" in script.text
