"""Text from outside the service (a provider's answer, its message id, its headers) is
stored clean, and one delivery whose outcome the database refuses costs no other delivery
anything: everyone's message goes out once, every delivery ends (SQLite and PostgreSQL).

The server's lease is short here, so that a settlement lost to a failed write would show
as the duplicates and stuck deliveries it causes, well inside the test's patience."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.web import Recorded, Reply, ScriptedHTTP, http_server
from tests.pushfakes.server import Reply as PushReply
from tests.pushfakes.server import Seen, running
from tests.pushfakes.webpush import FakePushService, b64url
from tidings.delivery.push.webpush import vapid_public_key
from tidings.store.database import Database

pytestmark = pytest.mark.both_databases

INNOCENT = [f"user{i:02d}" for i in range(20)]
FAST = {"delivery_lease_seconds": 2, "retry_delays_ms": [50, 50], "max_retry_attempts": 3,
        "allow_private_targets": True}
ENDED = ("sent", "dead", "skipped")


class PickyPushService(FakePushService):
    """A push service whose answer for some subscriptions is scripted by their path."""

    def __init__(self, vapid_public_key: str) -> None:
        super().__init__(vapid_public_key)
        self.answers: dict[str, PushReply] = {}

    def check(self, request: Seen) -> PushReply | None:
        return super().check(request) or self.answers.get(request.path)


class MailService(ScriptedHTTP):
    """An HTTP email service answering per recipient (`answers`), else 200 with an id."""

    def __init__(self) -> None:
        super().__init__(check=self._answer)
        self.answers: dict[str, Reply] = {}

    def _answer(self, request: Recorded) -> Reply | None:
        to = json.loads(request.body)["to"]
        return self.answers.get(to, Reply(200, json={"id": f"msg-{to}"}))

    def recipients(self) -> Counter[str]:
        return Counter(json.loads(r.body)["to"] for r in self.requests)


async def all_ended(server: RunningServer, medium: str, count: int) -> list[dict[str, Any]]:
    """The deliveries of `medium`, once `count` of them exist and all have ended (polled:
    the worker settles in its own task)."""
    items: list[dict[str, Any]] = []
    async with server.http("root", "admin") as http:
        for _ in range(500):
            response = await http.get("/api/admin/deliveries",
                                      params={"medium": medium, "limit": 100})
            items = response.json()["items"]
            if len(items) >= count and all(item["status"] in ENDED for item in items):
                return items
            await asyncio.sleep(0.03)
    states = [(item["user_id"], item["status"], item["attempts"]) for item in items]
    raise AssertionError(f"the deliveries never all ended: {states}")


async def detail(server: RunningServer, delivery_id: int) -> dict[str, Any]:
    async with server.http("root", "admin") as http:
        return dict((await http.get(f"/api/admin/deliveries/{delivery_id}")).json())


async def notify(server: RunningServer, users: list[str], medium: str) -> None:
    async with server.http("ci", "service") as http:
        response = await http.post("/api/notifications", json={
            "user_ids": users, "type": "build", "title": "Build finished",
            "message": "main is green", "media": [medium]})
    assert response.status_code == 202, response.text


def clean(text: str | None) -> bool:
    if text is None:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


# -- Web Push ---------------------------------------------------------------------------


@pytest.fixture
async def push_rig(database_url: str) -> AsyncIterator[tuple[RunningServer, PickyPushService]]:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    fake = PickyPushService(vapid_public_key(key))
    async with running(fake) as url:
        fake.origin = url
        server = await start_server(make_settings(
            database_url, vapid_private_key=raw, vapid_subject="mailto:ops@example.com",
            **FAST))
        try:
            yield server, fake
        finally:
            await server.stop()


async def subscribe(server: RunningServer, fake: PickyPushService, user: str) -> str:
    endpoint, browser = fake.subscribe(user)
    async with server.http(user) as http:
        response = await http.post("/api/devices", json={
            "platform": "webpush",
            "subscription": {"endpoint": endpoint,
                             "keys": {"p256dh": browser.p256dh, "auth": browser.auth}}})
    assert response.status_code == 201, response.text
    return f"/push/{user}"


@pytest.mark.parametrize("body", [b"bad\x00gone", b"bad\xed\xa0\x80gone"],
                         ids=["nul", "invalid-utf8"])
async def test_a_push_service_answer_with_a_nul_ends_its_delivery_and_no_one_elses_repeats(
    push_rig: tuple[RunningServer, PickyPushService], body: bytes
) -> None:
    server, fake = push_rig
    bad = await subscribe(server, fake, "mallory")
    fake.answers[bad] = PushReply(400, body)
    for user in INNOCENT:
        await subscribe(server, fake, user)
    await notify(server, ["mallory", *INNOCENT], "push")
    rows = {row["user_id"]: row for row in await all_ended(server, "push", 21)}
    assert (rows["mallory"]["status"], rows["mallory"]["attempts"]) == ("dead", 1)
    assert "bad" in rows["mallory"]["last_error"] and clean(rows["mallory"]["last_error"])
    history = (await detail(server, rows["mallory"]["id"]))["history"]
    assert len(history) == 1 and clean(history[0]["error"])
    assert all((rows[u]["status"], rows[u]["attempts"]) == ("sent", 1) for u in INNOCENT)
    pushes = Counter(seen.path for seen in fake.seen)
    assert pushes == Counter({f"/push/{user}": 1 for user in ["mallory", *INNOCENT]})


async def test_a_push_service_location_header_past_the_column_is_stored_shortened(
    push_rig: tuple[RunningServer, PickyPushService]
) -> None:
    server, fake = push_rig
    long = await subscribe(server, fake, "mallory")
    fake.answers[long] = PushReply(201, headers={"location": "https://x.test/" + "m" * 5000})
    await notify(server, ["mallory"], "push")
    (row,) = await all_ended(server, "push", 1)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert 0 < len(row["provider_message_id"]) <= 255


# -- email through an HTTP service -------------------------------------------------------


@pytest.fixture
async def mail_rig(database_url: str) -> AsyncIterator[tuple[RunningServer, MailService]]:
    service = MailService()
    async with http_server(service) as url:
        server = await start_server(make_settings(
            database_url, email_service_url=f"{url}/send", email_from="t@example.test",
            **FAST))
        try:
            for user in ["mallory", *INNOCENT]:
                async with server.http("accounts", "service") as http:
                    response = await http.put(f"/api/users/{user}/contact",
                                              json={"email": f"{user}@example.test"})
                assert response.status_code == 200, response.text
            yield server, service
        finally:
            await server.stop()


@pytest.mark.parametrize("provider_id", ["id\u0000z", "id\ud800z"], ids=["nul", "surrogate"])
async def test_an_email_service_id_with_a_nul_is_stored_clean_and_each_email_goes_once(
    mail_rig: tuple[RunningServer, MailService], provider_id: str
) -> None:
    server, service = mail_rig
    service.answers["mallory@example.test"] = Reply(200, json={"id": provider_id})
    await notify(server, ["mallory", *INNOCENT], "email")
    rows = {row["user_id"]: row for row in await all_ended(server, "email", 21)}
    assert all((row["status"], row["attempts"]) == ("sent", 1) for row in rows.values())
    assert rows["mallory"]["provider_message_id"] == "id\ufffdz"
    assert service.recipients() == Counter(
        {f"{user}@example.test": 1 for user in ["mallory", *INNOCENT]})


async def test_a_webhook_hears_a_dead_letter_whose_error_held_a_nul_once_and_clean(
    mail_rig: tuple[RunningServer, MailService], database_url: str
) -> None:
    server, service = mail_rig
    receiver = ScriptedHTTP(default=Reply(400, json={"error": "hook\u0000refuses"}))
    async with http_server(receiver) as url, server.http("root", "admin") as admin:
        created = await admin.post("/api/admin/webhooks", json={
            "url": f"{url}/hook", "events": ["delivery.dead"]})
        assert created.status_code == 201, created.text
        service.answers["mallory@example.test"] = Reply(400, json={"error": "no\u0000such"})
        await notify(server, ["mallory", *INNOCENT[:5]], "email")
        emails = {row["user_id"]: row for row in await all_ended(server, "email", 6)}
        (hook,) = await all_ended(server, "webhook", 1)
    assert (emails["mallory"]["status"], emails["mallory"]["attempts"]) == ("dead", 1)
    assert clean(emails["mallory"]["last_error"])
    assert (hook["status"], hook["attempts"]) == ("dead", 1)
    assert "hook" in hook["last_error"] and clean(hook["last_error"])
    (event,) = [json.loads(r.body) for r in receiver.requests]
    assert event["type"] == "delivery.dead"
    assert "no" in event["data"]["last_error"] and clean(event["data"]["last_error"])
    assert service.recipients() == Counter(
        {f"{user}@example.test": 1 for user in ["mallory", *INNOCENT[:5]]})


# -- a row the database refuses ---------------------------------------------------------

REFUSE_SQLITE = """CREATE TRIGGER refuse_poison BEFORE INSERT ON delivery_attempts
WHEN NEW.provider_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"""
REFUSE_PG = ["""CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.provider_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END
$$""", """CREATE TRIGGER refuse_poison BEFORE INSERT ON delivery_attempts
FOR EACH ROW EXECUTE FUNCTION refuse_poison()"""]


async def refuse_poison(database_url: str) -> None:
    """Make the database refuse one attempt row: a fault no cleaning can foresee."""
    db = Database(database_url)
    try:
        async with db.begin() as conn:
            for statement in REFUSE_PG if db.dialect == "postgresql" else [REFUSE_SQLITE]:
                await conn.execute(sa.text(statement))
    finally:
        await db.dispose()


async def test_a_settlement_the_database_refuses_fails_alone(
    mail_rig: tuple[RunningServer, MailService], database_url: str
) -> None:
    server, service = mail_rig
    await refuse_poison(database_url)
    service.answers["mallory@example.test"] = Reply(200, json={"id": "poison"})
    await notify(server, ["mallory", *INNOCENT], "email")
    rows = {row["user_id"]: row for row in await all_ended(server, "email", 21)}
    assert all((row["status"], row["attempts"]) == ("sent", 1) for row in rows.values())
    assert service.recipients() == Counter(
        {f"{user}@example.test": 1 for user in ["mallory", *INNOCENT]})
