"""Regenerates docs/img/admin.png: the operator console over realistic data.

Starts `tidings serve` on 127.0.0.1 with a temporary SQLite database and a local SMTP
server (aiosmtpd, which refuses the addresses at bounce.example.test), seeds it through
the HTTP API and Socket.IO (types such as billing/invoice and security/login, a template,
contacts, a team feed, several users connected, notifications whose emails are sent or
dead and whose in-app copies are acknowledged), then photographs /admin in headless
Chromium (/usr/bin/chromium through Playwright; the `dev` extra).

    .venv/bin/python scripts/screenshot_admin.py [--out docs/img/admin.png] [--width 1280]

Nothing leaves the machine: the team feed's webhook is registered with
ALLOW_PRIVATE_TARGETS=true (no DNS lookup) for a channel no notification is sent to.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import socketio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tidings.config.settings import Settings
from tidings.services.tokens import TokenService

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SECRET = "screenshot-secret-of-at-least-32-bytes!"

USERS = {"alice": "alice@example.test", "bob": "bob@example.test",
         "carol": "carol@example.test", "dmitri": "dmitri@bounce.example.test",
         "erin": "erin@example.test"}
SOCKETS = {"alice": 2, "bob": 1, "carol": 3, "erin": 1}
TYPES = {
    ("billing", "invoice"): {"name": {"en": "Invoices", "de": "Rechnungen"},
                             "default_media": ["in_app", "email"]},
    ("security", "login"): {"name": {"en": "New sign-in", "de": "Neue Anmeldung"},
                            "required": True, "default_media": ["in_app", "email"]},
    ("social", "mention"): {"name": {"en": "Mentions"}, "default_media": ["in_app"],
                            "digest": {"window_seconds": 3600}},
}


class Mailbox:
    """Accepts every recipient but those at bounce.example.test (550: a dead letter)."""

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if address.endswith("@bounce.example.test"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK: queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until_up(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            try:
                if (await http.get("/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


async def ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise SystemExit(f"{response.request.method} {response.request.url}: "
                         f"{response.status_code} {response.text}")
    return response.json() if response.content else None


async def connect(url: str, token: str, acks: bool) -> socketio.AsyncClient:
    """A user's socket; with `acks`, it acknowledges what it receives (in-app delivered)."""
    client = socketio.AsyncClient(reconnection=False)
    if acks:
        async def on_note(note: dict[str, Any]) -> None:
            await client.emit("ack", {"id": note["id"]})
        client.on("notification", on_note)
    await client.connect(url, auth={"token": token}, transports=["websocket"])
    return client


async def seed(url: str, tokens: TokenService) -> list[socketio.AsyncClient]:
    admin = {"Authorization": f"Bearer {tokens.mint('ops', ['admin'], 3600)}"}
    service = {"Authorization": f"Bearer {tokens.mint('billing-svc', ['service'], 3600)}"}
    async with httpx.AsyncClient(base_url=url, headers=admin) as http:
        for (channel, kind), body in TYPES.items():
            await ok(await http.put(f"/api/admin/types/{channel}/{kind}", json=body))
        await ok(await http.post("/api/admin/templates", json={
            "key": "invoice-ready", "default_locale": "en", "variants": {
                "en": {"title": "Invoice {{ number }} is ready",
                       "message": "Hi {{ name }}, your invoice of {{ amount }} is ready."},
                "de": {"title": "Rechnung {{ number }} ist da",
                       "message": "Hallo {{ name }}, Ihre Rechnung über {{ amount }} ist da."}}}))
        await ok(await http.put("/api/admin/channels/ops-alerts/feed", json={
            "kind": "slack",
            "webhook_url": "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXX"}))
        for user, email in USERS.items():
            await ok(await http.put(f"/api/users/{user}/contact", json={"email": email}))
    sockets = [await connect(url, tokens.mint(user, [], 3600), acks=index == 0)
               for user, count in SOCKETS.items() for index in range(count)]
    async with httpx.AsyncClient(base_url=url, headers=service) as http:
        for number, user in enumerate(USERS, start=1041):
            await ok(await http.post("/api/notifications", json={
                "user_id": user, "channel": "billing", "type": "invoice",
                "title": f"Invoice {number} is ready",
                "message": f"Your November invoice ({number}) is ready.",
                "url": f"https://billing.example.test/invoices/{number}"}))
        for user in ("alice", "dmitri", "carol"):
            await ok(await http.post("/api/notifications", json={
                "user_id": user, "channel": "security", "type": "login",
                "title": "New sign-in from Firefox on Linux",
                "message": "If this was not you, change your password."}))
    return sockets


async def settled(url: str, tokens: TokenService) -> int:
    """Waits until no email delivery is pending or sending; the id of a dead one."""
    admin = {"Authorization": f"Bearer {tokens.mint('ops', ['admin'], 3600)}"}
    async with httpx.AsyncClient(base_url=url, headers=admin) as http:
        for _ in range(200):
            items = (await ok(await http.get("/api/admin/deliveries",
                                             params={"medium": "email", "limit": 100})))["items"]
            if items and all(d["status"] not in ("pending", "sending") for d in items):
                return int(next(d["id"] for d in items if d["status"] == "dead"))
            await asyncio.sleep(0.1)
    raise SystemExit("the email deliveries did not settle")


async def traffic(url: str, tokens: TokenService, seconds: float) -> None:
    """A steady trickle of mentions (about 3 a second, varying) while the console samples,
    so the rate charts have lines."""
    service = {"Authorization": f"Bearer {tokens.mint('billing-svc', ['service'], 3600)}"}
    users = list(SOCKETS)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    async with httpx.AsyncClient(base_url=url, headers=service) as http:
        n = 0
        while loop.time() < end:
            await ok(await http.post("/api/notifications", json={
                "user_id": users[n % len(users)], "channel": "social", "type": "mention",
                "title": "You were mentioned", "message": "in #release-planning",
                "media": ["in_app"]}))
            n += 1
            await asyncio.sleep(0.2 + 0.25 * ((n // 7) % 3))


async def photograph(url: str, tokens: TokenService, dead: int, out: Path, width: int) -> None:
    from playwright.async_api import async_playwright, expect

    admin = tokens.mint("ops", ["admin"], 3600)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=["--no-sandbox", "--disable-gpu"])
        page = await browser.new_page(viewport={"width": width, "height": 900})
        page.set_default_timeout(15000)
        await page.goto(f"{url}/admin?every=2#token={admin}")
        await expect(page.locator("#connections tr[data-user='carol']")).to_have_count(1)
        load = asyncio.create_task(traffic(url, tokens, 50))
        await asyncio.sleep(40)
        await page.select_option("#filters select[name=status]", "")
        await page.select_option("#filters select[name=medium]", "email")
        await page.locator("#filters button[type=submit]").click()
        row = page.locator(f"#deliveries tr[data-id='{dead}']")
        await row.locator("button.open").click()
        await expect(page.locator("#detail table.history tbody tr")).to_have_count(1)
        await page.locator("#templates button[data-key='invoice-ready']").click()
        await page.locator("#preview textarea[name='variables']").fill(
            '{"number": 1042, "name": "Bob", "amount": "EUR 120.00"}')
        await expect(page.locator("#preview-parts dd[data-part='title']")).to_have_text(
            "Invoice 1042 is ready")
        await page.locator("h1").click()  # the focus ring off the form
        await page.screenshot(path=str(out), full_page=True)
        await load
        await browser.close()


async def run(out: Path, width: int) -> None:
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite+aiosqlite:///{Path(folder) / 'tidings.db'}"
        env = {**os.environ, "DATABASE_URL": database, "JWT_SECRET": SECRET,
               "HOST": "127.0.0.1", "WEBSOCKET_PORT": str(port), "LOG_LEVEL": "warning",
               "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "false",
               "EMAIL_FROM": "tidings@example.test", "ALLOW_PRIVATE_TARGETS": "true",
               "PUBLIC_URL": url}
        tidings = [sys.executable, "-m", "tidings"]
        migrate = await asyncio.create_subprocess_exec(*tidings, "migrate", env=env, cwd=folder)
        if await migrate.wait() != 0:
            raise SystemExit("tidings migrate failed")
        server = await asyncio.create_subprocess_exec(*tidings, "serve", env=env, cwd=folder)
        sockets: list[socketio.AsyncClient] = []
        try:
            await until_up(url)
            tokens = TokenService(Settings(_env_file=None, database_url=database,  # type: ignore[call-arg]
                                           jwt_secret=SECRET))
            sockets = await seed(url, tokens)
            dead = await settled(url, tokens)
            await photograph(url, tokens, dead, out, width)
        finally:
            for client in sockets:
                await client.disconnect()
            server.terminate()
            await asyncio.wait_for(server.wait(), 15)
            smtp.stop()
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "admin.png")
    parser.add_argument("--width", type=int, default=1280, help="the window's width (1280)")
    args = parser.parse_args()
    asyncio.run(run(args.out, args.width))


if __name__ == "__main__":
    main()
