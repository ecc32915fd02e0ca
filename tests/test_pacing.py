"""Pacing end to end (contract section 9): digests, quiet hours and the hourly limit, with
notifications created over HTTP on a real server and email sent to a loopback SMTP
server, on SQLite and PostgreSQL.

Two kinds of test: the server's own workers on the wall clock with a window of a second
(the SMTP server's `arrived` event is awaited); and a worker built here on an injected
clock, stepped pass by pass, for what the wall clock cannot reach in a test (a night of
quiet hours across a daylight-saving change, a clock hour ending)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.pushfakes.server import running
from tests.pushfakes.service import FakePushGateway
from tidings.delivery.email.sender import build_email_failover
from tidings.delivery.push.router import build_push_senders
from tidings.domain import pacing
from tidings.domain.model import utcnow
from tidings.queue.batch import Senders
from tidings.queue.dispatch import Dispatcher
from tidings.queue.retry import RetryPolicy
from tidings.queue.worker import DeliveryWorker
from tidings.store import pacing as pacing_store
from tidings.store.database import Database
from tidings.store.tables import notification_deliveries as deliveries
from tidings.support.metrics import Metrics

pytestmark = pytest.mark.both_databases

NOTE = {"type": "invoice", "title": "Invoice ready", "message": "Your invoice is ready",
        "media": ["email"]}


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


def mail_settings(database_url: str, port: int, **extra: Any) -> Any:
    return make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test",
        retry_delays_ms=[50, 50, 50], max_retry_attempts=2, **extra)


@pytest.fixture
async def mailer(database_url: str, smtp: tuple[ScriptedHandler, int]
                 ) -> AsyncIterator[RunningServer]:
    """A server whose own workers send (the wall clock)."""
    running = await start_server(mail_settings(database_url, smtp[1]))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def gateway() -> AsyncIterator[FakePushGateway]:
    fake = FakePushGateway("gw-secret")
    async with running(fake) as url:
        fake.url = f"{url}/v1/push"  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
async def quiet_server(database_url: str, smtp: tuple[ScriptedHandler, int],
                       gateway: FakePushGateway) -> AsyncIterator[RunningServer]:
    """A server that only takes notifications: the test's own worker sends them."""
    server = await start_server(mail_settings(
        database_url, smtp[1], workers_in_serve=False, throttle_per_hour=2,
        push_service_url=gateway.url, push_service_api_key="gw-secret"))  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Clock:
    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class SteppedWorker:
    worker: DeliveryWorker
    clock: Clock
    db: Database

    async def at(self, when: datetime) -> int:
        """One pass of the worker at `when` (and what it claimed)."""
        self.clock.now = when
        return await self.worker.run_once()


@pytest.fixture
async def stepped(quiet_server: RunningServer) -> AsyncIterator[SteppedWorker]:
    settings = quiet_server.settings
    clock = Clock()
    db = Database(settings.database_url)
    await db.start()
    http = httpx.AsyncClient()
    dispatcher = Dispatcher(
        Senders(email=build_email_failover(settings, http, timeout_s=5),
                push=build_push_senders(settings, http)),
        RetryPolicy(2, (0.05,)), settings.public_url, clock, random.Random(1))
    worker = DeliveryWorker(db, None, dispatcher, Metrics(), batch_size=100, lease_s=30,
                            poll_s=0.2, throttle_per_hour=settings.throttle_per_hour,
                            clock=clock)
    try:
        yield SteppedWorker(worker, clock, db)
    finally:
        await http.aclose()
        await db.dispose()


async def put_contact(server: RunningServer, user_id: str, **fields: Any) -> None:
    async with server.http("accounts", "service") as http:
        response = await http.put(f"/api/users/{user_id}/contact", json=fields)
    assert response.status_code == 200, response.text


async def create(server: RunningServer, **fields: Any) -> dict[str, Any]:
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_id": "alice", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def email_of(server: RunningServer, note_id: str,
                   medium: str = "email") -> dict[str, Any]:
    async with server.http("alice") as http:
        body = (await http.get(f"/api/notifications/{note_id}")).json()
    return dict(next(d for d in body["deliveries"] if d["medium"] == medium))


async def all_sent(server: RunningServer, ids: list[str],
                   medium: str = "email") -> list[dict[str, Any]]:
    """The deliveries once all are sent (polled: the worker settles in its own task, and
    HTTP has no event to await; bounded)."""
    for _ in range(250):
        states = [await email_of(server, note_id, medium) for note_id in ids]
        if all(state["status"] == "sent" for state in states):
            return states
        await asyncio.sleep(0.02)
    raise AssertionError(f"not all sent: {states}")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- digests on the wall clock ------------------------------------------------------------


async def test_several_creates_in_one_window_arrive_as_one_digest_email(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(mailer, "alice", email="alice@example.test")
    digest = {"key": "daily-invoices", "window_seconds": 1}
    notes = [await create(mailer, title=f"Invoice {n}", digest=digest, media=["email",
                                                                              "in_app"])
             for n in range(3)]
    held = [next(d for d in n["deliveries"] if d["medium"] == "email") for n in notes]
    assert [d["status"] for d in held] == ["pending"] * 3
    assert len({d["digest_id"] for d in held}) == 1 and held[0]["digest_id"]
    # In-app is never held.
    assert all(next(d for d in n["deliveries"] if d["medium"] == "in_app")["status"] == "sent"
               for n in notes)
    await asyncio.wait_for(handler.arrived.wait(), 10)
    states = await all_sent(mailer, [n["id"] for n in notes])
    assert {s["digest_id"] for s in states} == {held[0]["digest_id"]}
    assert len(handler.received) == 1
    message = handler.received[0].message
    assert message["Subject"] == "3 new notifications"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert all(f"Invoice {n}" in text for n in range(3))
    # All items share one (channel, type): the one-click header unsubscribes from it.
    assert message["List-Unsubscribe"].strip().startswith("<https://notify.example.test/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_a_digest_of_mixed_types_has_no_one_click_header(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(mailer, "alice", email="alice@example.test")
    digest = {"key": "mixed", "window_seconds": 1}
    first = await create(mailer, type="invoice", digest=digest)
    # A later create joins the open window whatever its own window.
    second = await create(mailer, type="reminder", digest={**digest, "window_seconds": 600})
    await asyncio.wait_for(handler.arrived.wait(), 10)
    await all_sent(mailer, [first["id"], second["id"]])
    message = handler.received[0].message
    assert message["Subject"] == "2 new notifications"
    assert message["List-Unsubscribe"] is None
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # No link to a page that does not exist (the preference centre will be the one).
    assert "https://notify.example.test/api/preferences" not in text


@pytest.mark.parametrize("digest, field_name", [
    ({"key": "k", "window_seconds": 0}, "digest.window_seconds"),
    ({"key": "k", "window_seconds": 86_401}, "digest.window_seconds"),
    ({"key": "no spaces", "window_seconds": 5}, "digest.key"),
    ({"window_seconds": 5}, "digest.key"),
    ({"key": "k", "window_seconds": 5, "extra": 1}, "digest.extra"),
])
async def test_a_bad_digest_is_a_422_naming_the_field(
    mailer: RunningServer, digest: dict[str, Any], field_name: str
) -> None:
    async with mailer.http("billing", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_id": "alice", "digest": digest})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field_name


async def test_a_digest_with_a_schedule_is_refused(mailer: RunningServer) -> None:
    async with mailer.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={
            **NOTE, "user_id": "alice", "scheduled_at": "2099-01-01T00:00:00Z",
            "digest": {"key": "k", "window_seconds": 5}})
    assert response.status_code == 422 and response.json()["error"]["field"] == "digest"


# -- on an injected clock -----------------------------------------------------------------


async def test_a_digest_window_survives_a_restart_and_closes_on_time(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(quiet_server, "alice", email="alice@example.test")
    created_at = utcnow()
    ids = [(await create(quiet_server, title=f"Item {n}",
                         digest={"key": "weekly", "window_seconds": 60}))["id"]
           for n in range(2)]
    # The worker built after the creates (as after a restart) finds the window in its row.
    assert await stepped.at(created_at + timedelta(seconds=30)) == 0
    assert (await email_of(quiet_server, ids[0]))["status"] == "pending"
    assert await stepped.at(created_at + timedelta(seconds=61)) == 1
    states = await all_sent(quiet_server, ids)
    assert len(handler.received) == 1 and states[0]["digest_id"] == states[1]["digest_id"]
    assert states[0]["attempts"] == 1


async def quiet_nights_in_berlin(server: RunningServer) -> None:
    """alice, with an address, quiet from 22:00 to 07:00 in Berlin."""
    await put_contact(server, "alice", email="alice@example.test",
                      timezone="Europe/Berlin", quiet_hours={"start": "22:00", "end": "07:00"})


async def test_quiet_hours_across_midnight_and_spring_forward_defer_to_their_end(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await quiet_nights_in_berlin(quiet_server)
    note = await create(quiet_server)
    # The night Berlin moves its clocks forward (2027-03-28, 02:00 -> 03:00).
    assert await stepped.at(at("2027-03-27T23:30:00+01:00")) == 1
    state = await email_of(quiet_server, note["id"])
    assert state["status"] == "pending" and state["attempts"] == 0  # a deferral is no try
    assert state["deferred_until"] == "2027-03-28T05:00:00Z"  # 07:00 CEST
    assert await stepped.at(at("2027-03-28T06:59:00+02:00")) == 0
    assert not handler.received
    assert await stepped.at(at("2027-03-28T07:00:00+02:00")) == 1
    state = (await all_sent(quiet_server, [note["id"]]))[0]
    assert state["attempts"] == 1 and state["deferred_until"] == "2027-03-28T05:00:00Z"


async def test_clearing_quiet_hours_makes_what_waits_due_at_once(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await quiet_nights_in_berlin(quiet_server)
    single = await create(quiet_server)
    held = [(await create(quiet_server, digest={"key": "night", "window_seconds": 5}))["id"]
            for _ in range(2)]
    assert await stepped.at(at("2027-03-27T23:30:00+01:00")) == 2  # one delivery, one digest
    assert (await email_of(quiet_server, single["id"]))["deferred_until"] == (
        "2027-03-28T05:00:00Z")
    await put_contact(quiet_server, "alice", quiet_hours=None)
    # Due now: the next pass sends both, long before 07:00.
    assert await stepped.at(at("2027-03-27T23:31:00+01:00")) == 2
    states = await all_sent(quiet_server, [single["id"], *held])
    assert [state["attempts"] for state in states] == [1, 1, 1]
    assert sorted(m.message["Subject"] for m in handler.received) == [
        "2 new notifications", "Invoice ready"]


async def test_clearing_quiet_hours_releases_what_the_servers_own_worker_deferred(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    now = utcnow()
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"),
             "end": (now + timedelta(hours=2)).strftime("%H:%M")}  # UTC: no zone given
    await put_contact(mailer, "alice", email="alice@example.test", quiet_hours=quiet)
    note = await create(mailer)
    for _ in range(250):  # the worker claims it on its own and gives it back deferred
        if (await email_of(mailer, note["id"]))["deferred_until"] is not None:
            break
        await asyncio.sleep(0.02)
    waiting = await email_of(mailer, note["id"])
    assert waiting["status"] == "pending" and waiting["deferred_until"] is not None
    assert not handler.received
    await put_contact(mailer, "alice", quiet_hours=None)
    await asyncio.wait_for(handler.arrived.wait(), 10)
    assert (await all_sent(mailer, [note["id"]]))[0]["attempts"] == 1


async def test_narrowed_quiet_hours_hold_what_waits_only_until_their_new_end(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await quiet_nights_in_berlin(quiet_server)
    note = await create(quiet_server)
    assert await stepped.at(at("2027-03-27T23:30:00+01:00")) == 1
    await put_contact(quiet_server, "alice", quiet_hours={"start": "22:00", "end": "23:45"})
    assert await stepped.at(at("2027-03-27T23:31:00+01:00")) == 1  # met the new rule
    state = await email_of(quiet_server, note["id"])
    assert state["status"] == "pending" and state["attempts"] == 0
    assert state["deferred_until"] == "2027-03-27T22:45:00Z"  # 23:45 CET, not 07:00
    assert await stepped.at(at("2027-03-27T23:45:00+01:00")) == 1
    assert (await all_sent(quiet_server, [note["id"]]))[0]["attempts"] == 1
    assert len(handler.received) == 1


async def test_a_new_zone_moves_what_waits_to_the_quiet_hours_of_that_zone(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await quiet_nights_in_berlin(quiet_server)
    note = await create(quiet_server)
    assert await stepped.at(at("2027-03-27T23:30:00+01:00")) == 1
    # 23:31 in Berlin is 18:31 in New York: outside the same hours there.
    await put_contact(quiet_server, "alice", timezone="America/New_York")
    assert await stepped.at(at("2027-03-27T23:31:00+01:00")) == 1
    assert (await all_sent(quiet_server, [note["id"]]))[0]["attempts"] == 1
    assert len(handler.received) == 1


async def test_critical_goes_through_quiet_hours(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await quiet_nights_in_berlin(quiet_server)
    note = await create(quiet_server, priority="critical")
    assert await stepped.at(at("2027-10-31T02:30:00+01:00")) == 1
    state = (await all_sent(quiet_server, [note["id"]]))[0]
    assert state["deferred_until"] is None and len(handler.received) == 1


async def test_a_digest_closing_in_quiet_hours_waits_for_fall_back_morning(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await quiet_nights_in_berlin(quiet_server)
    ids = [(await create(quiet_server, digest={"key": "night", "window_seconds": 5}))["id"]
           for _ in range(2)]
    # The night Berlin moves its clocks back (2027-10-31, 03:00 -> 02:00): 02:30 twice.
    assert await stepped.at(at("2027-10-31T02:30:00+01:00")) == 1
    states = [await email_of(quiet_server, i) for i in ids]
    assert {s["deferred_until"] for s in states} == {"2027-10-31T06:00:00Z"}  # 07:00 CET
    assert all(s["status"] == "pending" and s["attempts"] == 0 for s in states)
    assert await stepped.at(at("2027-10-31T06:59:00+01:00")) == 0
    assert await stepped.at(at("2027-10-31T07:00:00+01:00")) == 1
    await all_sent(quiet_server, ids)
    assert len(handler.received) == 1
    assert handler.received[0].message["Subject"] == "2 new notifications"


async def test_the_excess_over_the_hourly_limit_goes_in_one_digest_next_hour(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(quiet_server, "alice", email="alice@example.test")
    ids = [(await create(quiet_server, title=f"Item {n}"))["id"] for n in range(5)]
    urgent = (await create(quiet_server, title="Urgent", priority="critical"))["id"]
    # THROTTLE_PER_HOUR is 2 here: two go, critical goes uncounted, three wait.
    assert await stepped.at(at("2027-01-10T10:15:00+00:00")) == 6
    states = {i: await email_of(quiet_server, i) for i in [*ids, urgent]}
    assert states[urgent]["status"] == "sent"
    sent = [i for i in ids if states[i]["status"] == "sent"]
    held = [i for i in ids if states[i]["status"] == "pending"]
    assert len(sent) == 2 and len(held) == 3
    assert len({states[i]["digest_id"] for i in held}) == 1
    assert all(states[i]["attempts"] == 0 for i in held)
    assert len(handler.received) == 3
    assert await stepped.at(at("2027-01-10T10:59:59+00:00")) == 0
    assert await stepped.at(at("2027-01-10T11:00:00+00:00")) == 1
    await all_sent(quiet_server, ids)  # nothing dropped
    assert len(handler.received) == 4
    assert handler.received[-1].message["Subject"] == "3 new notifications"
    async with stepped.db.begin() as conn:  # the digest counts as one, in its own hour
        hour = pacing.hour_of(at("2027-01-10T11:00:00+00:00"))
        assert await pacing_store.sends_in(conn, "alice", "email", hour) == 1
        earlier = pacing.hour_of(at("2027-01-10T10:00:00+00:00"))
        assert await pacing_store.sends_in(conn, "alice", "email", earlier) == 2



async def test_a_retry_is_neither_throttled_nor_counted(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.data.append("451 4.3.0 try again later")  # the first message fails for now
    await put_contact(quiet_server, "alice", email="alice@example.test")
    ids = [(await create(quiet_server, title=f"Item {n}"))["id"] for n in range(2)]
    assert await stepped.at(at("2027-01-10T10:15:00+00:00")) == 2
    states = [await email_of(quiet_server, i) for i in ids]
    assert sorted(s["status"] for s in states) == ["pending", "sent"]
    # The limit (2) is reached; the retry goes all the same and is not counted.
    assert await stepped.at(at("2027-01-10T10:16:00+00:00")) == 1
    states = await all_sent(quiet_server, ids)
    assert sorted(s["attempts"] for s in states) == [1, 2]
    async with stepped.db.begin() as conn:
        hour = pacing.hour_of(at("2027-01-10T10:00:00+00:00"))
        assert await pacing_store.sends_in(conn, "alice", "email", hour) == 2


async def test_a_digest_that_fails_for_now_is_retried_as_one(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.data.append("451 4.3.0 try again later")
    await put_contact(quiet_server, "alice", email="alice@example.test")
    created_at = utcnow()
    ids = [(await create(quiet_server, digest={"key": "k", "window_seconds": 5}))["id"]
           for _ in range(2)]
    assert await stepped.at(created_at + timedelta(seconds=6)) == 1
    states = [await email_of(quiet_server, i) for i in ids]
    assert all(s["status"] == "pending" and s["attempts"] == 1 for s in states)
    assert all(s["last_error"] and "451" in s["last_error"] for s in states)
    assert await stepped.at(created_at + timedelta(seconds=7)) == 1
    states = await all_sent(quiet_server, ids)
    assert all(s["attempts"] == 2 for s in states) and len(handler.received) == 1


async def test_a_dead_digest_item_replayed_goes_out_alone(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.data.append("554 5.7.1 rejected")
    await put_contact(quiet_server, "alice", email="alice@example.test")
    created_at = utcnow()
    ids = [(await create(quiet_server, title=f"Item {n}",
                         digest={"key": "k", "window_seconds": 5}))["id"] for n in range(2)]
    assert await stepped.at(created_at + timedelta(seconds=6)) == 1
    states = [await email_of(quiet_server, i) for i in ids]
    assert [s["status"] for s in states] == ["dead", "dead"]
    async with quiet_server.http("ops", "admin") as http:
        dead = (await http.get("/api/admin/deliveries?status=dead")).json()["items"]
        first = next(d for d in dead if d["notification_id"] == ids[0])
        replayed = await http.post(f"/api/admin/deliveries/{first['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert await stepped.at(created_at + timedelta(seconds=7)) == 1
    state = (await all_sent(quiet_server, ids[:1]))[0]
    assert state["digest_id"] is None and len(handler.received) == 1
    assert handler.received[0].message["Subject"] == "Item 0"


async def test_a_delivery_joining_while_its_digest_is_sent_goes_in_another(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.gate = asyncio.Event()
    await put_contact(quiet_server, "alice", email="alice@example.test")
    created_at = utcnow()
    first = await create(quiet_server, title="First", digest={"key": "k", "window_seconds": 5})
    late = await create(quiet_server, title="Late", digest={"key": "other",
                                                           "window_seconds": 600})
    digest_id = first["deliveries"][0]["digest_id"]
    sending = asyncio.create_task(stepped.at(created_at + timedelta(seconds=6)))
    await asyncio.wait_for(handler.in_data.wait(), 10)
    # A create that read the window as open just before the worker took it (the race).
    async with stepped.db.begin() as conn:
        await conn.execute(deliveries.update()
                           .where(deliveries.c.notification_id == late["id"])
                           .values(digest_id=digest_id))
    handler.gate.set()
    assert await asyncio.wait_for(sending, 10) == 1
    assert (await email_of(quiet_server, late["id"]))["status"] == "pending"
    assert await stepped.at(created_at + timedelta(seconds=7)) == 1
    states = await all_sent(quiet_server, [first["id"], late["id"]])
    assert {s["digest_id"] for s in states} == {digest_id}
    assert [r.message["Subject"] for r in handler.received] == ["1 new notification"] * 2


async def test_a_digest_whose_notifications_were_deleted_sends_nothing(
    quiet_server: RunningServer, stepped: SteppedWorker, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(quiet_server, "alice", email="alice@example.test")
    created_at = utcnow()
    note = await create(quiet_server, digest={"key": "k", "window_seconds": 5},
                        media=["email", "in_app"])
    async with quiet_server.http("alice") as http:
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 204
    assert await stepped.at(created_at + timedelta(seconds=6)) == 1
    assert await stepped.at(created_at + timedelta(seconds=7)) == 0  # ended, not retried
    assert not handler.received


async def test_a_digest_without_an_address_is_skipped(
    quiet_server: RunningServer, stepped: SteppedWorker
) -> None:
    created_at = utcnow()
    note = await create(quiet_server, digest={"key": "k", "window_seconds": 5})
    assert await stepped.at(created_at + timedelta(seconds=6)) == 1
    for _ in range(250):
        state = await email_of(quiet_server, note["id"])
        if state["status"] == "skipped":
            break
        await asyncio.sleep(0.02)
    assert state["status"] == "skipped" and state["digest_id"]
    assert state["last_error"] == "the user has no email address"


async def add_device(server: RunningServer, token: str) -> str:
    async with server.http("alice") as http:
        response = await http.post("/api/devices", json={"platform": "fcm", "token": token})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_push_digest_reaches_every_device_once(
    quiet_server: RunningServer, stepped: SteppedWorker, gateway: FakePushGateway
) -> None:
    devices = {await add_device(quiet_server, f"token-{n}") for n in range(2)}
    created_at = utcnow()
    ids = [(await create(quiet_server, title=f"Build {n}", media=["push"],
                         digest={"key": "builds", "window_seconds": 5}))["id"]
           for n in range(3)]
    assert await stepped.at(created_at + timedelta(seconds=6)) == 1
    states = await all_sent(quiet_server, ids, "push")
    assert len({s["digest_id"] for s in states}) == 1
    bodies = [seen.json() for seen in gateway.seen]
    assert {b["device"]["id"] for b in bodies} == devices and len(bodies) == 2
    assert all(b["title"] == "3 new notifications" for b in bodies)
    assert bodies[0]["body"] == "Build 0, Build 1, Build 2"


async def test_push_is_throttled_per_user_not_per_device(
    quiet_server: RunningServer, stepped: SteppedWorker, gateway: FakePushGateway
) -> None:
    for n in range(2):
        await add_device(quiet_server, f"token-{n}")
    ids = [(await create(quiet_server, title=f"Build {n}", media=["push"]))["id"]
           for n in range(3)]
    assert await stepped.at(at("2027-01-10T10:15:00+00:00")) == 3
    states = [await email_of(quiet_server, i, "push") for i in ids]
    assert sorted(s["status"] for s in states) == ["pending", "sent", "sent"]
    assert len(gateway.seen) == 4  # two notifications, each to both devices
    assert await stepped.at(at("2027-01-10T11:00:00+00:00")) == 1
    await all_sent(quiet_server, ids, "push")
    assert len(gateway.seen) == 6
    assert gateway.seen[-1].json()["title"] == "1 new notification"
