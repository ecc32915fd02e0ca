"""Escalation (contract section 12): a create's (or its type's) steps bring the
notification through more media after a delay unless it reached a state first; steps run
once across workers and survive a worker that dies holding one; deliveries carry `step`.
Real SMTP server on loopback; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tidings.client.models import Delivery, NotificationRequest
from tidings.container import build_core
from tidings.domain.escalation import StepState, Unless
from tidings.domain.model import Medium, utcnow
from tidings.queue.escalation import EscalationRunner
from tidings.store import escalations
from tidings.store.tables import escalation_steps, notification_deliveries

pytestmark = pytest.mark.both_databases

NOTE = {"user_id": "alice", "channel": "billing", "type": "invoice", "title": "Invoice",
        "message": "Your invoice is ready", "media": ["in_app"]}
EMAIL_STEP = {"after_seconds": 1, "unless": "read", "media": ["email"]}


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


async def _server(database_url: str, port: int, **overrides: Any) -> RunningServer:
    return await start_server(make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test",
        **overrides))


@pytest.fixture
async def mailer(database_url: str, smtp: tuple[ScriptedHandler, int]
                 ) -> AsyncIterator[RunningServer]:
    running = await _server(database_url, smtp[1])
    try:
        await add_email(running, "alice", "alice@example.test")
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def idle(database_url: str, smtp: tuple[ScriptedHandler, int]
               ) -> AsyncIterator[RunningServer]:
    """A server whose own workers do not run: the test runs the steps' loops itself."""
    running = await _server(database_url, smtp[1], workers_in_serve=False)
    try:
        await add_email(running, "alice", "alice@example.test")
        yield running
    finally:
        await running.stop()


async def add_email(server: RunningServer, user_id: str, email: str) -> None:
    async with server.http("accounts", "service") as http:
        response = await http.put(f"/api/users/{user_id}/contact", json={"email": email})
    assert response.status_code == 200, response.text


async def create(server: RunningServer, **fields: Any) -> dict[str, Any]:
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def step_states(server: RunningServer, note_id: str) -> list[str]:
    async with server.services.db.begin() as conn:
        rows = await conn.execute(
            sa.select(escalation_steps.c.state)
            .where(escalation_steps.c.notification_id == note_id)
            .order_by(escalation_steps.c.step))
        return [row[0] for row in rows]


async def until_steps(server: RunningServer, note_id: str, *states: str) -> None:
    for _ in range(500):
        if await step_states(server, note_id) == list(states):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"steps never became {states}: {await step_states(server, note_id)}")


async def deliveries_of(server: RunningServer, note_id: str) -> list[dict[str, Any]]:
    async with server.http("alice") as http:
        body = (await http.get(f"/api/notifications/{note_id}")).json()
    return list(body["deliveries"])


async def until_email_sent(server: RunningServer, note_id: str) -> list[dict[str, Any]]:
    for _ in range(500):
        found = await deliveries_of(server, note_id)
        if any(d["medium"] == "email" and d["status"] == "sent" for d in found):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no email was sent: {found}")


def runner(server: RunningServer, lease_s: float = 30.0) -> EscalationRunner:
    return EscalationRunner(server.services.db, deliverable=frozenset(Medium),
                            lease_s=lease_s, poll_s=0.1, batch_size=10)


async def run_until(server: RunningServer, steps: EscalationRunner, note_id: str,
                    state: str) -> None:
    """Passes of `steps` (this test's own loop) until the note's one step is `state`."""
    for _ in range(500):
        await steps.run_once()
        if await step_states(server, note_id) == [state]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the step never became {state}")


async def step_rows(server: RunningServer, note_id: str) -> list[tuple[str, int, str]]:
    async with server.services.db.begin() as conn:
        rows = await conn.execute(
            sa.select(notification_deliveries.c.medium, notification_deliveries.c.step,
                      notification_deliveries.c.status)
            .where(notification_deliveries.c.notification_id == note_id)
            .order_by(notification_deliveries.c.step, notification_deliveries.c.medium))
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_step_emails_after_its_delay_and_its_delivery_says_which_step(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    note = await create(mailer, escalation=[EMAIL_STEP])
    assert [(d["medium"], d["step"]) for d in note["deliveries"]] == [("in_app", 0)]
    found = await until_email_sent(mailer, note["id"])
    assert [(d["medium"], d["step"], d["status"]) for d in found] == [
        ("in_app", 0, "sent"), ("email", 1, "sent")]
    (mail,) = handler.received
    assert mail.rcpt_tos == ["alice@example.test"]
    assert await step_states(mailer, note["id"]) == [StepState.DONE]


async def test_reading_first_cancels_the_step(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    note = await create(mailer, escalation=[{**EMAIL_STEP, "after_seconds": 2},
                                            {**EMAIL_STEP, "after_seconds": 3,
                                             "unless": "delivered"}])
    async with mailer.http("alice") as http:
        assert (await http.put(f"/api/notifications/{note['id']}/read")).status_code == 200
    await until_steps(mailer, note["id"], StepState.CANCELED, StepState.CANCELED)
    assert handler.received == []
    assert [d["medium"] for d in await deliveries_of(mailer, note["id"])] == ["in_app"]


async def test_a_deleted_notification_cancels_its_steps(mailer: RunningServer) -> None:
    note = await create(mailer, escalation=[EMAIL_STEP])
    async with mailer.http("alice") as http:
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 204
    await until_steps(mailer, note["id"], StepState.CANCELED)


async def test_seeing_first_cancels_an_unless_seen_step(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    note = await create(mailer, escalation=[{**EMAIL_STEP, "after_seconds": 2,
                                             "unless": "seen"}])
    async with mailer.http("alice") as http:  # the bell opened: seen, not read
        seen = await http.post("/api/notifications/seen", json={"ids": [note["id"]]})
        assert seen.json() == {"count": 1}
    await until_steps(mailer, note["id"], StepState.CANCELED)
    assert handler.received == []


async def test_a_canceled_notification_cancels_its_steps(mailer: RunningServer) -> None:
    note = await create(mailer, scheduled_at="2999-01-01T00:00:00Z",
                        escalation=[EMAIL_STEP])
    async with mailer.http("billing", "service") as http:
        canceled = await http.post(f"/api/notifications/{note['id']}/cancel")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    # Its step falls due far in the future: run it now through the store's own rule.
    async with mailer.services.db.begin() as conn:
        assert await escalations.target(conn, note["id"], Unless.READ,
                                        datetime.now(UTC)) is None


async def test_a_types_escalation_applies_to_a_create_without_one(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    async with mailer.http("root", "admin") as http:
        response = await http.put("/api/admin/types/billing/invoice", json={
            "name": {"en": "Invoices"}, "escalation": [EMAIL_STEP]})
    assert response.status_code == 200, response.text
    note = await create(mailer)
    found = await until_email_sent(mailer, note["id"])
    assert ("email", 1) in [(d["medium"], d["step"]) for d in found]
    assert len(smtp[0].received) == 1
    # `[]` names no step: the type's does not apply.
    plain = await create(mailer, escalation=[])
    assert await step_states(mailer, plain["id"]) == []


async def test_a_medium_the_create_already_sends_is_not_sent_twice(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    note = await create(mailer, media=["in_app", "email"], escalation=[
        {"after_seconds": 1, "unless": "read", "media": ["email", "push"]}])
    await until_steps(mailer, note["id"], StepState.DONE)
    rows = {(d["medium"], d["step"]): d for d in await until_email_sent(mailer, note["id"])}
    assert rows[("email", 1)]["status"] == "skipped"
    assert rows[("email", 1)]["last_error"] == "email already goes out with step 0"
    assert rows[("push", 1)]["status"] == "skipped"
    assert rows[("push", 1)]["last_error"] == "no push provider is configured"
    assert len(smtp[0].received) == 1


async def test_two_workers_run_a_step_once(idle: RunningServer) -> None:
    note = await create(idle, escalation=[EMAIL_STEP])
    first, second = runner(idle), runner(idle)
    for _ in range(500):
        await asyncio.gather(first.run_once(), second.run_once())
        if await step_states(idle, note["id"]) == [StepState.DONE]:
            break
        await asyncio.sleep(0.02)
    assert await step_rows(idle, note["id"]) == [("in_app", 0, "sent"),
                                                 ("email", 1, "pending")]


async def test_a_step_whose_worker_died_runs_once_after_its_lease(idle: RunningServer) -> None:
    note = await create(idle, escalation=[EMAIL_STEP])
    # A worker claims the step under a short lease and dies before it finishes it.
    for _ in range(500):
        async with idle.services.db.begin() as conn:
            dead = await escalations.claim(conn, utcnow(), 10, lease_s=0.3)
        if dead:
            break
        await asyncio.sleep(0.02)
    (held,) = dead
    assert await step_states(idle, note["id"]) == [StepState.RUNNING]
    after = runner(idle)
    await run_until(idle, after, note["id"], StepState.DONE)
    assert await step_rows(idle, note["id"]) == [("in_app", 0, "sent"),
                                                 ("email", 1, "pending")]
    # The dead worker's lease is no longer the step's: it could end nothing.
    async with idle.services.db.begin() as conn:
        assert not await escalations.finish(conn, held, StepState.DONE, utcnow())


async def test_a_batch_writes_each_items_steps(idle: RunningServer) -> None:
    async with idle.http("billing", "service") as http:
        response = await http.post("/api/notifications/batch", json={"items": [
            {**NOTE, "escalation": [EMAIL_STEP, {**EMAIL_STEP, "after_seconds": 60}]},
            {**NOTE, "user_ids": None, "user_id": None} | {"user_ids": ["bob", "carol"],
                                                          "escalation": [EMAIL_STEP]},
        ]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 202]
    async with idle.services.db.begin() as conn:
        count = (await conn.execute(sa.select(sa.func.count())
                                    .select_from(escalation_steps))).scalar_one()
    assert count == 4


@pytest.mark.parametrize(("steps", "field"), [
    ([{**EMAIL_STEP, "after_seconds": 0}], "escalation.0.after_seconds"),
    ([{**EMAIL_STEP, "after_seconds": 604_801}], "escalation.0.after_seconds"),
    ([{**EMAIL_STEP, "after_seconds": 1.5}], "escalation.0.after_seconds"),
    ([EMAIL_STEP, {**EMAIL_STEP, "unless": "clicked"}], "escalation.1.unless"),
    ([{**EMAIL_STEP, "media": []}], "escalation.0.media"),
    ([{**EMAIL_STEP, "media": ["email", "email"]}], "escalation.0.media"),
    ([{**EMAIL_STEP, "media": ["fax"]}], "escalation.0.media.0"),
    ([{**EMAIL_STEP, "extra": 1}], "escalation.0.extra"),
    ([EMAIL_STEP] * 4, "escalation"),
    ({"after_seconds": 1}, "escalation"),
])
async def test_a_bad_step_is_a_422_naming_it(mailer: RunningServer, steps: Any,
                                              field: str) -> None:
    async with mailer.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, "escalation": steps})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_steps_email_joins_the_creates_digest(idle: RunningServer) -> None:
    note = await create(idle, digest={"key": "daily", "window_seconds": 3600},
                        escalation=[EMAIL_STEP])
    steps = runner(idle)
    await run_until(idle, steps, note["id"], StepState.DONE)
    async with idle.services.db.begin() as conn:
        row = (await conn.execute(
            sa.select(notification_deliveries.c.status, notification_deliveries.c.digest_id)
            .where(notification_deliveries.c.notification_id == note["id"],
                   notification_deliveries.c.step == 1))).one()
    assert row[0] == "pending" and row[1] is not None  # held for the window "daily"


def test_the_client_sends_a_requests_escalation() -> None:
    request = NotificationRequest(type="invoice", title="t", message="m", user_id="alice",
                                  escalation=[EMAIL_STEP])
    assert request.to_json()["escalation"] == [EMAIL_STEP]
    assert "escalation" not in NotificationRequest(type="invoice", title="t",
                                                   message="m").to_json()
    assert Delivery.from_json({"medium": "email", "status": "sent", "attempts": 1,
                               "last_error": None, "updated_at": None, "step": 2}).step == 2


async def test_ended_steps_go_with_retention(idle: RunningServer) -> None:
    note = await create(idle, escalation=[EMAIL_STEP])
    waiting = await create(idle, escalation=[{**EMAIL_STEP, "after_seconds": 3600}])
    async with idle.http("alice") as http:
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 204
    steps = runner(idle)
    await run_until(idle, steps, note["id"], StepState.CANCELED)
    async with idle.services.db.begin() as conn:
        assert await escalations.purge_ended(conn, utcnow() + timedelta(days=1)) == 1
    assert await step_states(idle, note["id"]) == []
    assert await step_states(idle, waiting["id"]) == [StepState.PENDING]  # not ended: kept


async def test_an_in_app_step_brings_an_email_only_notification_to_the_inbox(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    note = await create(mailer, media=["email"], escalation=[
        {"after_seconds": 1, "unless": "read", "media": ["in_app"]}])
    await until_steps(mailer, note["id"], StepState.DONE)
    for _ in range(500):
        found = {(d["medium"], d["step"]): d["status"]
                 for d in await deliveries_of(mailer, note["id"])}
        if found.get(("in_app", 1)) == "sent":
            break
        await asyncio.sleep(0.02)
    assert found == {("email", 0): "sent", ("in_app", 1): "sent"}
    async with mailer.http("alice") as http:
        listed = (await http.get("/api/notifications")).json()["items"]
    assert [item["id"] for item in listed] == [note["id"]]


async def test_two_worker_processes_email_a_step_once(
    idle: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    note = await create(idle, escalation=[EMAIL_STEP])
    workers = [build_core(idle.settings, serve=False) for _ in range(2)]
    for core in workers:
        await core.start()
    try:
        await until_email_sent(idle, note["id"])
        await until_steps(idle, note["id"], StepState.DONE)
    finally:
        for core in workers:
            await core.stop()
    assert await step_rows(idle, note["id"]) == [("in_app", 0, "sent"), ("email", 1, "sent")]
    assert len(handler.received) == 1


async def test_a_step_keeps_to_the_recipients_preferences_unless_the_type_is_required(
    idle: RunningServer
) -> None:
    async with idle.http("alice") as http:
        response = await http.put("/api/notifications/preferences", json={
            "channel": "billing", "notification_type": "invoice", "email_enabled": False})
    assert response.status_code == 200, response.text
    opted_out = await create(idle, escalation=[EMAIL_STEP])
    steps = runner(idle)
    await run_until(idle, steps, opted_out["id"], StepState.DONE)
    assert await step_rows(idle, opted_out["id"]) == [("in_app", 0, "sent")]
    async with idle.http("root", "admin") as http:
        response = await http.put("/api/admin/types/billing/invoice", json={
            "name": {"en": "Invoices"}, "required": True})
    assert response.status_code == 200, response.text
    required = await create(idle, escalation=[EMAIL_STEP])
    await run_until(idle, steps, required["id"], StepState.DONE)
    assert await step_rows(idle, required["id"]) == [("in_app", 0, "sent"),
                                                     ("email", 1, "pending")]
