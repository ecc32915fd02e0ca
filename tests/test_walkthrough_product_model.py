"""docs/WALKTHROUGHS.md's product-model tour, run as written: `tidings serve` and the SMTP
server (`python -m aiosmtpd ... -c aiosmtpd.handlers.Mailbox DIR`) as processes of their
own on loopback, with the tour's settings, then the tour's requests and what it says
follows from them: a type's default media and escalation, the email of an unread
invoice, the preference-centre link in that email, its form switching the invoices' email
off, a required type emailing through an opt-out; then a topic of 1,000 producer-added
users reached live on two nodes (PostgreSQL, Redis), by scripts/topic_listeners.py.

Only the addresses differ from the tour: free loopback ports instead of 3001, 3002 and
8025, so `PUBLIC_URL` (the tour keeps its default, http://localhost:3001) names the port
taken, and a redis-server of the test's own instead of the machine's."""

from __future__ import annotations

import asyncio
import email.policy
import mailbox
import os
import re
import sys
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import SECRET, free_port, make_settings
from tests.redis_servers import RedisServer
from tests.test_preference_centre import form_of
from tidings.services.tokens import TokenService
from tidings.store.tables import escalation_steps

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 30.0
# Connecting 1,000 sockets on a busy two-core machine: the script's own bound is 60 s a
# batch; this one only keeps a broken run from hanging.
LISTENERS_TIMEOUT_S = 180.0

INVOICES = {"name": {"en": "Invoices", "de": "Rechnungen"}, "default_media": ["in_app"],
            "escalation": [{"after_seconds": 3, "unless": "read", "media": ["email"]}]}
SIGN_INS = {"name": {"en": "Sign-ins", "de": "Anmeldungen"}, "required": True,
            "default_media": ["in_app", "email"]}
INVOICE = {"user_id": "alice", "channel": "billing", "type": "invoice",
           "title": "Invoice ready", "message": "Your November invoice is ready"}
# The tour's `curl -d ...` of the form: what the page sends with the invoices' email off.
FORM = [("in_app:billing/invoice", "on"), ("push:billing/invoice", "on"),
        ("sms:billing/invoice", "on"), ("chat:billing/invoice", "on"),
        ("topic", "billing/invoice"), ("quiet_start", ""), ("quiet_end", "")]


class Processes:
    """This test's processes, their output in files (stdout piped when asked), each
    stopped by its PID at the end: SIGTERM, then SIGKILL."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[asyncio.subprocess.Process] = []

    async def start(self, name: str, *argv: str, env: dict[str, str],
                    pipe: bool = False) -> asyncio.subprocess.Process:
        log = (self.directory / f"{name}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=self.directory, env=env, stderr=log,
            stdout=asyncio.subprocess.PIPE if pipe else log)
        self.started.append(process)
        return process

    async def serve(self, name: str, port: int, env: dict[str, str]) -> str:
        process = await self.start(name, sys.executable, "-m", "tidings", "serve", "--host",
                                   "127.0.0.1", "--port", str(port), env=env)
        url = f"http://127.0.0.1:{port}"
        async with asyncio.timeout(TIMEOUT_S), httpx.AsyncClient(base_url=url) as http:
            while True:
                assert process.returncode is None, (self.directory / f"{name}.log").read_text()
                try:
                    if (await http.get("/ready")).status_code == 200:
                        return url
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for process in self.started:
            if process.returncode is None:
                process.terminate()
        for process in self.started:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        await started.stop()


def environment(database_url: str, **settings: str) -> dict[str, str]:
    """The process environment of the tour's commands (the JWT secret the test's tokens
    are signed with), with the database URL spelt as the tour spells it."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL")}
    url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return {**env, "JWT_SECRET": SECRET, "DATABASE_URL": url, "LOG_LEVEL": "warning",
            **settings}


def client(url: str, tokens: TokenService | None, sub: str = "", *roles: str
           ) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {tokens.mint(sub, roles)}"} if tokens else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT_S)


async def listening(port: int) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


def kept(directory: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(directory, create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            for key in box.keys()]


async def until_kept(directory: Path, count: int) -> list[EmailMessage]:
    """The mailbox once it holds `count` messages (a message is moved into `new` whole)."""
    async with asyncio.timeout(TIMEOUT_S):
        while len(found := kept(directory)) < count:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
    return found


async def until_settled(http: httpx.AsyncClient, notification_id: str) -> dict[str, Any]:
    """The notification once its email delivery is no longer pending or sending."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            note: dict[str, Any] = (await http.get(f"/api/notifications/{notification_id}")
                                    ).json()
            if all(d["status"] not in ("pending", "sending") for d in note["deliveries"]):
                return note
            await asyncio.sleep(0.1)


def footer_link(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    found = re.search(r"\S+/preferences/\S+", part.get_content())
    assert found is not None, part.get_content()
    return found[0]


async def until_step_ran(database_url: str, notification_id: str) -> str:
    """The state the escalation step ends in (what the HTTP API does not show when the
    step wrote nothing)."""
    engine = create_async_engine(database_url)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                async with engine.connect() as conn:
                    state = (await conn.execute(sa.select(escalation_steps.c.state).where(
                        escalation_steps.c.notification_id == notification_id))).scalar_one()
                if state not in ("pending", "running"):
                    return str(state)
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


def media_of(notification: dict[str, Any]) -> list[tuple[str, int, str]]:
    return sorted((d["medium"], d["step"], d["status"]) for d in notification["deliveries"])


@pytest.mark.both_databases
async def test_a_type_escalates_the_preference_centre_turns_it_off_a_required_type_still_emails(
        database_url: str, processes: Processes, tmp_path: Path) -> None:
    mail, smtp_port, port = tmp_path / "mail", free_port(), free_port()
    await processes.start("smtp", sys.executable, "-m", "aiosmtpd", "-n", "-l",
                          f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Mailbox",
                          str(mail), env=environment(database_url))
    await listening(smtp_port)
    url = await processes.serve("serve", port, environment(
        database_url, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port),
        SMTP_STARTTLS="false", PUBLIC_URL=f"http://127.0.0.1:{port}"))
    tokens = TokenService(make_settings(database_url))
    async with client(url, tokens, "ops", "admin") as ops, \
            client(url, tokens, "billing", "service") as billing, \
            client(url, tokens, "alice") as alice, client(url, None) as anyone:
        invoices = await ops.put("/api/admin/types/billing/invoice", json=INVOICES)
        assert invoices.status_code == 200, invoices.text
        assert invoices.json()["escalation"] == INVOICES["escalation"]
        sign_ins = await ops.put("/api/admin/types/security/login", json=SIGN_INS)
        assert sign_ins.status_code == 200 and sign_ins.json()["required"] is True
        contact = await billing.put("/api/users/alice/contact",
                                    json={"email": "alice@example.com"})
        assert contact.status_code == 200, contact.text

        # A create without media takes the type's: in-app alone, at step 0.
        created = await billing.post("/api/notifications", json=INVOICE)
        assert created.status_code == 201, created.text
        assert media_of(created.json()) == [("in_app", 0, "sent")]
        # alice does not read it: the step sends the email.
        [first] = await until_kept(mail, 1)
        assert (first["Subject"], first["To"]) == ("Invoice ready", "alice@example.com")
        assert first["List-Unsubscribe"]
        # The message reaches the mailbox a moment before the worker records it as sent.
        note = await until_settled(alice, created.json()["id"])
        assert note["status"] == "delivered" and note["read_at"] is None
        assert media_of(note) == [("email", 1, "sent"), ("in_app", 0, "sent")]

        # The footer's link opens the page; its form, with the invoices' email off.
        link = footer_link(first)
        assert link.startswith(f"{url}/preferences/")
        page = await anyone.get(link)
        assert page.status_code == 200
        assert "Invoices" in page.text and "Sign-ins" in page.text
        assert "Required: always sent" in page.text
        sent = [field for field in form_of(page.text) if field != ("email:billing/invoice", "on")]
        assert sent == FORM
        saved = await anyone.post(link, content=urlencode(FORM), headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert saved.status_code == 303 and saved.headers["location"] == link
        rows = (await alice.get("/api/notifications/preferences")).json()["items"]
        assert rows == [{"channel": "billing", "notification_type": "invoice",
                         "email_enabled": False, "push_enabled": True,
                         "in_app_enabled": True, "sms_enabled": True, "chat_enabled": True}]

        # The next invoice is not read either; its step finds email off and sends nothing.
        december = await billing.post("/api/notifications", json={
            **INVOICE, "title": "December invoice",
            "message": "Your December invoice is ready"})
        assert december.status_code == 201, december.text
        assert await until_step_ran(database_url, december.json()["id"]) == "done"
        later = (await alice.get(f"/api/notifications/{december.json()['id']}")).json()
        assert media_of(later) == [("in_app", 0, "sent")]

        # A required type goes through alice's own opt-out.
        opt_out = await alice.put("/api/notifications/preferences", json={
            "channel": "security", "notification_type": "login", "email_enabled": False})
        assert opt_out.status_code == 200 and opt_out.json()["email_enabled"] is False
        login = await billing.post("/api/notifications", json={
            "user_id": "alice", "channel": "security", "type": "login",
            "title": "New sign-in", "message": "A new device signed in to your account"})
        assert login.status_code == 201, login.text
        emails = await until_kept(mail, 2)
    by_subject = {message["Subject"]: message for message in emails}
    assert sorted(by_subject) == ["Invoice ready", "New sign-in"]
    assert by_subject["New sign-in"]["List-Unsubscribe"] is None
    assert footer_link(by_subject["New sign-in"]) == link


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_one_create_reaches_a_thousand_subscribers_of_a_topic_on_two_nodes(
        database_url: str, redis_server: RedisServer, processes: Processes) -> None:
    env = environment(database_url, REDIS_URL=redis_server.url)
    migrate = await processes.start("migrate", sys.executable, "-m", "tidings", "migrate",
                                    env=env)
    assert await asyncio.wait_for(migrate.wait(), TIMEOUT_S) == 0
    one, two = await asyncio.gather(processes.serve("node1", free_port(), env),
                                    processes.serve("node2", free_port(), env))
    tokens = TokenService(make_settings(database_url))
    users = [f"fan-{n:04d}" for n in range(1000)]
    async with client(one, tokens, "billing", "service") as node_one, \
            client(two, tokens, "billing", "service") as node_two:
        added = await node_one.put("/api/channels/launches/subscribers", json={"add": users})
        assert added.status_code == 200 and added.json() == {"added": 1000, "removed": 0}

        listeners = await processes.start(
            "listeners", sys.executable, str(ROOT / "scripts" / "topic_listeners.py"), one, two,
            env=env, pipe=True)
        assert listeners.stdout is not None
        ready = await asyncio.wait_for(listeners.stdout.readline(), LISTENERS_TIMEOUT_S)
        assert ready.decode().strip() == (f"1000 sockets connected: 500 to {one}, 500 to {two}; "
                                          "waiting for a notification")
        created = await node_two.post("/api/notifications", json={
            "channel": "launches", "type": "launch", "title": "Lift-off",
            "message": "Version 2 is out", "media": ["in_app"]})
        assert created.status_code == 202, created.text
        assert created.json() == {"count": 1000, "channel": "launches"}
    outcome = await asyncio.wait_for(listeners.stdout.read(), LISTENERS_TIMEOUT_S)
    assert outcome.decode().strip() == (f"1000 of 1000 users received 'Lift-off': 500 through "
                                        f"{one}, 500 through {two}, each their own copy")
    assert await listeners.wait() == 0
