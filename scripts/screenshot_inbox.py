"""Regenerates docs/img/inbox.png: the /inbox page of a real server, holding the kind of
notifications a product sends (an invoice with its actions, a sign-in alert, a comment
mention, a few read ones), in headless Chromium.

    .venv/bin/python scripts/screenshot_inbox.py [--out docs/img/inbox.png]

It starts `tidings serve` on 127.0.0.1 (a free port) with a temporary SQLite database,
creates the notifications through the HTTP API as a producer would, marks two read as the
user, and photographs the page. The API stamps every notification with the moment it is
created, so, for the picture only, the script then moves their times back (minutes to
days) in that throwaway database, to show how the inbox words older times. Needs the dev
extra (Playwright) and Debian's chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TIDINGS = Path(sys.executable).parent / "tidings"
CHROMIUM = "/usr/bin/chromium"
APP = "https://app.acme.example"

# Oldest first, each with how long ago it came and whether the user has read it.
SEED: list[tuple[timedelta, bool, dict[str, Any]]] = [
    (timedelta(days=9), True, {
        "type": "welcome", "channel": "account", "title": "Welcome to Acme Cloud",
        "message": "Your workspace is ready. Invite your team to get started.",
        "url": f"{APP}/team/invite"}),
    (timedelta(days=1, hours=3), True, {
        "type": "invoice_paid", "channel": "billing", "title": "Invoice #1042 was paid",
        "message": "Thanks! €249.00 was charged to the Visa card ending in 4242.",
        "url": f"{APP}/billing/invoices/1042"}),
    (timedelta(hours=2, minutes=10), False, {
        "type": "mention", "channel": "comments",
        "title": "Dana Whitfield mentioned you in “Q3 roadmap”",
        "message": "“@alice can you confirm the launch date for the billing revamp?”",
        "url": f"{APP}/docs/q3-roadmap#comment-218",
        "actions": [{"label": "Reply", "url": f"{APP}/docs/q3-roadmap#reply-218"}]}),
    (timedelta(minutes=14), False, {
        "type": "new_sign_in", "channel": "security", "title": "New sign-in from Firefox on Linux",
        "message": "Berlin, Germany. If this wasn't you, change your password now.",
        "url": f"{APP}/security/activity",
        "actions": [{"label": "Review activity", "url": f"{APP}/security/activity"},
                    {"label": "Change password", "url": f"{APP}/security/password"}]}),
    (timedelta(seconds=20), False, {
        "type": "invoice_ready", "channel": "billing", "title": "Invoice #1043 is ready",
        "message": "€249.00 for November, due on December 21.",
        "url": f"{APP}/billing/invoices/1043",
        "actions": [{"label": "Pay now", "url": f"{APP}/billing/invoices/1043/pay"},
                    {"label": "Download PDF", "url": f"{APP}/billing/invoices/1043.pdf"}]}),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def token(env: dict[str, str], sub: str, *roles: str) -> str:
    command = [str(TIDINGS), "token", "--sub", sub, *(f"--roles={role}" for role in roles)]
    return subprocess.run(command, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"tidings serve ended with {server.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("tidings serve did not become ready within 60 s")


def seed(url: str, producer: str, user: str) -> list[tuple[str, timedelta]]:
    made = []
    with httpx.Client(base_url=url, timeout=10) as http:
        for ago, read, fields in SEED:
            answer = http.post("/api/notifications", json={"user_id": "alice", **fields},
                               headers={"Authorization": f"Bearer {producer}"})
            answer.raise_for_status()
            note = answer.json()
            if read:
                http.put(f"/api/notifications/{note['id']}/read",
                         headers={"Authorization": f"Bearer {user}"}).raise_for_status()
            made.append((note["id"], ago))
    return made


def age(database: Path, made: list[tuple[str, timedelta]]) -> None:
    """Moves each notification's creation back by its `ago` (SQLite keeps UTC text)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with sqlite3.connect(database) as db:
        for note_id, ago in made:
            when = (now - ago).isoformat(" ", "microseconds")
            db.execute("UPDATE notifications SET created_at = ?, visible_at = ?, "
                       "delivered_at = CASE WHEN delivered_at IS NULL THEN NULL ELSE ? END "
                       "WHERE id = ?", (when, when, when, note_id))


async def photograph(url: str, user: str, out: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            # A zone where it is early afternoon now, so "2 hours ago" and "yesterday" mean
            # the same whenever the script runs.
            hour = datetime.now(UTC).hour
            east = (13 - hour + 12) % 24 - 12
            zone = f"Etc/GMT{-east:+d}" if east else "UTC"  # Etc/GMT-3 is three hours east
            context = await browser.new_context(viewport={"width": 960, "height": 820},
                                                locale="en-US", timezone_id=zone)
            page = await context.new_page()
            await page.goto(f"{url}/inbox#token={user}")
            inbox = page.locator("tidings-inbox")
            await expect(inbox.locator(".conn")).to_have_text("Live", timeout=15000)
            await expect(inbox.locator("li.item")).to_have_count(len(SEED), timeout=15000)
            await page.screenshot(path=str(out), full_page=True)
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "inbox.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "tidings.db"
        env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
               "JWT_SECRET": secrets.token_urlsafe(32), "LOG_LEVEL": "warning"}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([str(TIDINGS), "serve", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, cwd=folder)
        try:
            wait_until_up(url, server)
            user = token(env, "alice")
            made = seed(url, token(env, "billing", "service"), user)
            age(database, made)
            asyncio.run(photograph(url, user, args.out))
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
