"""Every route's real answers match the OpenAPI document the service publishes, so the
documented schema and the answers cannot drift apart (the routes answer with the domain
records' own JSON, not through the documented models)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from jsonschema import Draft202012Validator

from tests.conftest import RunningServer, make_settings, start_server
from tidings.config.settings import Settings
from tidings.store.tables import notification_deliveries

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Email is configured (never reached: no worker runs), so an email delivery is a row
    the admin routes can be shown, not a medium skipped at creation."""
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_port=9,
                         workers_in_serve=False)
# Answers that are not JSON by design.
NOT_JSON = {("GET", "/metrics"), ("DELETE", "/api/notifications/{notification_id}")}


def _template(spec: dict[str, Any], path: str) -> str | None:
    """The spec's path template that a concrete path matches (a literal path first, so
    `/api/notifications/preferences` is not taken for an id)."""
    if path in spec["paths"]:
        return path
    given = path.split("/")
    for template in spec["paths"]:
        parts = template.split("/")
        if len(parts) == len(given) and all(
            p == g or p.startswith("{") for p, g in zip(parts, given, strict=True)
        ):
            return str(template)
    return None


async def _admin_calls(
    server: RunningServer, client: Callable[..., httpx.AsyncClient]
) -> None:
    """Every admin route, answering as it should and as it should not."""
    async with client("ops", "admin") as ops, client("svc", "service") as svc:
        created = await svc.post("/api/notifications",
                                 json={**NOTE, "user_id": "carol", "media": ["email"]})
        await ops.get("/api/admin/deliveries", params={"limit": 1})
        await ops.get("/api/admin/deliveries", params={"since": "never"})  # 422
        await svc.get("/api/admin/deliveries")  # 403
        async with server.services.db.begin() as conn:
            table = notification_deliveries
            delivery_id = (await conn.execute(sa.select(table.c.id).where(
                table.c.notification_id == created.json()["id"]))).scalar_one()
        await ops.get(f"/api/admin/deliveries/{delivery_id}")
        await ops.get("/api/admin/deliveries/0")  # 404
        await ops.post(f"/api/admin/deliveries/{delivery_id}/replay")  # 409: not dead
        async with server.services.db.begin() as conn:
            await conn.execute(table.update().where(table.c.id == delivery_id)
                               .values(status="dead"))
        await ops.post(f"/api/admin/deliveries/{delivery_id}/replay")
        await ops.post("/api/admin/deliveries/replay", json={"status": "dead", "dry_run": True})
        await ops.post("/api/admin/deliveries/replay", json={"status": "sent"})  # 422
        hook = await ops.post("/api/admin/webhooks", json={
            "url": "https://93.184.215.14/hook", "events": ["delivery.dead"]})
        await ops.post("/api/admin/webhooks", json={"url": "https://93.184.215.14/hook",
                                                    "events": []})  # 422
        await ops.get("/api/admin/webhooks")
        await ops.delete(f"/api/admin/webhooks/{hook.json()['id']}")
        await ops.delete(f"/api/admin/webhooks/{hook.json()['id']}")  # 404
        feed = {"kind": "slack", "webhook_url": "https://93.184.215.14/services/T/B/x"}
        await ops.put("/api/admin/channels/billing/feed", json=feed)
        await ops.put("/api/admin/channels/billing/feed", json={**feed, "kind": "irc"})  # 422
        await ops.get("/api/admin/channels/billing/feed")
        await ops.get("/api/admin/feeds", params={"limit": 1})
        await ops.get("/api/admin/feeds", params={"cursor": "user:bob"})  # 422
        await svc.get("/api/admin/feeds")  # 403
        await ops.delete("/api/admin/channels/billing/feed")
        await ops.get("/api/admin/channels/billing/feed")  # 404
        await ops.get("/api/admin/connections")
        await ops.get("/api/admin/connections", params={"limit": 0})  # 422
        await svc.get("/api/admin/connections")  # 403


async def _template_calls(client: Callable[..., httpx.AsyncClient]) -> None:
    """Every template route, answering as it should and as it should not."""
    body = {"key": "hello", "variants": {"en": {"title": "Hi {{ name }}", "message": "m"},
                                         "de": {"title": "Hallo {{ name }}"}}}
    async with client("ops", "admin") as ops, client("svc", "service") as svc:
        await ops.post("/api/admin/templates", json=body)
        await ops.post("/api/admin/templates", json=body)  # 409
        await ops.post("/api/admin/templates", json={**body, "key": "x", "variants": {
            "en": {"title": "{% if %}", "message": "m"}}})  # 422
        await svc.post("/api/admin/templates", json=body)  # 403
        await ops.put("/api/admin/templates/hello", json=body)
        await ops.put("/api/admin/templates/nope", json={**body, "key": "nope"})  # 404
        await ops.get("/api/admin/templates", params={"limit": 1})
        await ops.get("/api/admin/templates/hello", params={"version": 1})
        await ops.get("/api/admin/templates/nope")  # 404
        await ops.post("/api/admin/templates/hello/preview",
                       json={"variables": {"name": "Ada"}, "locale": "de_AT"})
        await ops.post("/api/admin/templates/hello/preview", json={"variables": {}})  # 422
        await svc.post("/api/notifications", json={
            "type": "greeting", "template": "hello", "variables": {"name": "Ada"},
            "user_id": "alice"})
        await ops.delete("/api/admin/templates/hello")
        await ops.delete("/api/admin/templates/hello")  # 404


async def _type_calls(client: Callable[..., httpx.AsyncClient]) -> None:
    """The types catalogue's routes (contract section 11)."""
    body = {"name": {"en": "Invoices"}, "description": {"en": "Monthly"}, "required": True,
            "default_media": ["email"], "digest": {"window_seconds": 60},
            "escalation": [{"after_seconds": 60, "unless": "read", "media": ["email"]}]}
    async with client("ops", "admin") as ops, client("svc", "service") as svc:
        await ops.put("/api/admin/types/billing/invoice", json=body)
        await ops.put("/api/admin/types/billing/receipt", json={"name": {"en": "Receipts"}})
        await ops.put("/api/admin/types/billing/invoice", json={"name": {}})  # 422
        await svc.put("/api/admin/types/billing/invoice", json=body)  # 403
        await ops.get("/api/admin/types", params={"limit": 1})
        await ops.get("/api/admin/types/billing/invoice")
        await ops.get("/api/admin/types/billing/nope")  # 404
        await ops.delete("/api/admin/types/billing/receipt")
        await ops.delete("/api/admin/types/billing/receipt")  # 404


async def _topic_calls(client: Callable[..., httpx.AsyncClient]) -> None:
    """Every route of producer-managed topics, answering as it should and as it should
    not."""
    async with client("svc", "service") as svc, client("alice") as alice:
        path = "/api/channels/orders/subscribers"
        await svc.put(path, json={"add": ["alice", "bob"], "remove": ["carol"]})
        await svc.put(path, json={})  # 422
        await svc.put("/api/channels/user:bob/subscribers", json={"add": ["a"]})  # 422
        await alice.put(path, json={"add": ["alice"]})  # 403
        await svc.get(path, params={"limit": 1})
        await svc.get(path, params={"cursor": "?"})  # 422
        await alice.get(path)  # 403
        await svc.get("/api/channels", params={"limit": 1})
        await svc.get("/api/channels", params={"limit": 0})  # 422
        await alice.get("/api/channels")  # 403
        await alice.get("/api/subscriptions")


async def _inbox_state_calls(client: Callable[..., httpx.AsyncClient]) -> None:
    """Every inbox-state and cancel route, answering as it should and as it should not."""
    later = "2999-01-01T00:00:00Z"
    async with client("svc", "service") as svc, client("alice") as alice:
        note = (await svc.post("/api/notifications", json={
            **NOTE, "user_id": "alice", "url": "https://example.com/o/1",
            "actions": [{"label": "Track", "url": "https://example.com/t/1"}],
            "expires_at": later})).json()
        await alice.post("/api/notifications/read-all", json={"channel": "default"})
        await alice.post("/api/notifications/read-all", json={"channel": "no way"})  # 422
        await alice.post("/api/notifications/seen", json={"ids": [note["id"]]})
        await alice.post("/api/notifications/seen", json={"ids": "x"})  # 422
        await alice.post(f"/api/notifications/{note['id']}/archive")
        await alice.get("/api/notifications", params={"archived": "true"})
        await alice.post(f"/api/notifications/{note['id']}/unarchive")
        await alice.post("/api/notifications/not-an-id/archive")  # 404
        await alice.post("/api/notifications/not-an-id/unarchive")  # 404
        await svc.post(f"/api/notifications/{note['id']}/cancel")  # 409: already due
        await alice.post(f"/api/notifications/{note['id']}/cancel")  # 403
        await svc.post("/api/notifications/not-an-id/cancel")  # 404
        scheduled = (await svc.post("/api/notifications", json={
            **NOTE, "user_id": "alice", "scheduled_at": "2998-01-01T00:00:00Z"})).json()
        await svc.post(f"/api/notifications/{scheduled['id']}/cancel")
        await svc.post("/api/notifications/cancel", json={"idempotency_key": "k-1"})
        await svc.post("/api/notifications/cancel", json={})  # 422
        await alice.post("/api/notifications/cancel", json={"idempotency_key": "k-1"})  # 403


async def test_every_route_answers_as_documented(server: RunningServer) -> None:
    answers: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        answers.append(response)

    def client(sub: str | None = None, *roles: str) -> httpx.AsyncClient:
        http = server.http(sub, *roles)
        http.event_hooks["response"] = [keep]
        return http

    async with client("svc", "service") as svc, client("alice") as alice, client() as anon:
        created = (await svc.post("/api/notifications", json={**NOTE, "user_id": "alice"}))
        note_id = created.json()["id"]
        await svc.post("/api/notifications", json={**NOTE, "user_ids": ["alice", "bob"]})
        await svc.post("/api/notifications", json={**NOTE, "title": ""})  # 422
        await svc.post("/api/notifications", content=b"{", headers={
            "Content-Type": "application/json"})  # 400
        await alice.post("/api/notifications", json={**NOTE, "user_id": "bob"})  # 403
        await svc.post("/api/notifications/batch", json={"items": [
            {**NOTE, "user_id": "alice"}, {**NOTE, "user_ids": ["bob"]}, {"title": ""}]})
        await svc.post("/api/notifications/batch",
                       json={"items": [{**NOTE, "user_id": "a"}] * 1001})  # 413
        await anon.get("/api/notifications")  # 401
        await alice.get("/api/notifications", params={"limit": 1})
        await alice.get("/api/notifications", params={"cursor": "nope"})  # 422
        await alice.get(f"/api/notifications/{note_id}")
        await alice.get("/api/notifications/not-an-id")  # 404
        await alice.put(f"/api/notifications/{note_id}/read")
        await alice.put("/api/notifications/preferences", json={"channel": "orders",
                                                                 "email_enabled": False})
        await alice.post("/api/notifications/preferences/bulk",
                         json={"items": [{"notification_type": "order", "push_enabled": False}]})
        await alice.get("/api/notifications/preferences")
        await alice.delete(f"/api/notifications/{note_id}")
        await alice.delete(f"/api/notifications/{note_id}")  # 404
        await _admin_calls(server, client)
        await _template_calls(client)
        await _type_calls(client)
        await _topic_calls(client)
        await _inbox_state_calls(client)
        await alice.put("/api/users/me/contact", json={
            "email": "alice@example.com", "locale": "pt-BR", "timezone": "Europe/Vienna",
            "quiet_hours": {"start": "22:00", "end": "07:00"}})
        await alice.put("/api/users/me/contact", json={"quiet_hours": None})
        await alice.put("/api/users/me/contact", json={"timezone": "../etc"})  # 422
        await alice.get("/api/users/me/contact")
        await alice.get("/api/users/bob/contact")  # 404
        await svc.get("/api/users/alice/preference-link")
        await alice.get("/api/users/alice/preference-link")  # 403
        await anon.get("/api/users/alice/preference-link")  # 401
        device = await alice.post("/api/devices", json={"platform": "fcm", "token": "t1"})
        await alice.post("/api/devices", json={"platform": "fcm", "token": "t1"})  # 200
        await alice.post("/api/devices", json={"platform": "fcm"})  # 422
        await alice.post("/api/devices", json={"platform": "fcm", "token": "t2",
                                               "user_id": "bob"})  # 403
        await alice.get("/api/devices")
        await alice.delete(f"/api/devices/{device.json()['id']}")
        await alice.delete(f"/api/devices/{device.json()['id']}")  # 404
        await anon.get("/api/push/vapid-public-key")  # null: Web Push is not configured
        await anon.get("/health")
        await anon.get("/ready")
        await anon.get("/metrics")
        spec = (await anon.get("/openapi.json")).json()

    covered: set[tuple[str, str]] = set()
    for response in answers:
        method, path = response.request.method, response.request.url.path
        if path == "/openapi.json":
            continue
        template = _template(spec, path)
        assert template is not None, f"{method} {path} is not in the OpenAPI document"
        covered.add((method, template))
        documented = spec["paths"][template][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in documented, f"{method} {template} answered {status}, undocumented"
        if (method, template) in NOT_JSON or response.status_code == 204:
            continue
        schema = documented[status]["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": spec["components"]})
        errors = [e.message for e in validator.iter_errors(response.json())]
        assert not errors, f"{method} {template} {status}: {errors}"

    routes = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert routes - covered == set(), "routes without a checked answer"


async def test_vapid_public_key_answers_as_documented(database_url: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    raw = base64.urlsafe_b64encode(key.to_bytes(32, "big")).rstrip(b"=").decode()
    running = await start_server(make_settings(database_url, vapid_private_key=raw,
                                               vapid_subject="mailto:ops@example.com"))
    try:
        async with running.http() as anon:
            answer = await anon.get("/api/push/vapid-public-key")
            spec = (await anon.get("/openapi.json")).json()
    finally:
        await running.stop()
    assert answer.status_code == 200
    documented = spec["paths"]["/api/push/vapid-public-key"]["get"]["responses"]["200"]
    schema = documented["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": spec["components"]})
    assert [e.message for e in validator.iter_errors(answer.json())] == []
