"""The official JavaScript `socket.io-client` (4.x, from npm) against a real Tidings server,
used unchanged: default options, so the connection starts on HTTP long-polling and upgrades
to WebSocket. `tests/js/contract.mjs` drives the client; this test starts it, creates the
notification it waits for over HTTP, and checks what it reports.

Needs `node` (and `npm` for the first install of `tests/js/node_modules` from the committed
lock file). Without node the test is skipped, except under CI=true where it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import RunningServer

JS_DIR = Path(__file__).parent / "js"
CONTRACT = JS_DIR / "contract.mjs"
INSTALL_TIMEOUT = 300.0
READY_TIMEOUT = 20.0  # node start-up, polling handshake, upgrade, refused connection
RESULT_TIMEOUT = 20.0  # contract.mjs gives up on its own after 15 s


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not on PATH: the JavaScript client contract test needs Node.js"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _installed() -> bool:
    """node_modules holds what the committed lock file asks for (npm's hidden lock file is
    written by every install, so an older one means package-lock.json changed since)."""
    hidden = JS_DIR / "node_modules" / ".package-lock.json"
    client = JS_DIR / "node_modules" / "socket.io-client" / "package.json"
    return (client.exists() and hidden.exists()
            and hidden.stat().st_mtime >= (JS_DIR / "package-lock.json").stat().st_mtime)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.fixture
async def node() -> str:
    """The node executable, with tests/js/node_modules installed from the lock file."""
    node = _tool("node")
    if not _installed():
        npm = _tool("npm")
        process = await asyncio.create_subprocess_exec(
            npm, "ci", "--no-audit", "--no-fund",
            cwd=JS_DIR,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), INSTALL_TIMEOUT)
        finally:
            await _kill(process)
        assert process.returncode == 0, f"npm ci failed in {JS_DIR}:\n{output.decode()}"
    return node


def _bad_token() -> str:
    """Well formed and unexpired, but signed with another secret."""
    now = int(time.time())
    return jwt.encode({"sub": "alice", "iat": now, "exp": now + 600},
                      "another-secret-of-at-least-32-bytes!!", algorithm="HS256")


async def _run_contract(server: RunningServer, node: str) -> tuple[dict[str, Any], Any]:
    """Runs contract.mjs to the end; answers its JSON result and the created notification."""
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "NODE_OPTIONS"}},
        "TIDINGS_TOKEN": server.token("alice"),
        "TIDINGS_USER": "alice",
        "TIDINGS_BAD_TOKEN": _bad_token(),
        "TIDINGS_SINCE": since,
        "TIDINGS_JS_TIMEOUT_MS": "15000",
    }
    process = await asyncio.create_subprocess_exec(
        node, str(CONTRACT), server.url,
        cwd=JS_DIR,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_task = asyncio.ensure_future(process.stderr.read())
    lines: list[str] = []

    async def output(kill: bool = False) -> str:
        """Everything the script said; it gets a moment to exit on its own, then is killed."""
        if kill:
            await _kill(process)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            await _kill(process)
        assert process.stdout is not None
        lines.append((await asyncio.wait_for(process.stdout.read(), 5)).decode())
        err = (await asyncio.wait_for(stderr_task, 5)).decode()
        return f"exit {process.returncode}\nstdout:\n{''.join(lines)}\nstderr:\n{err}"

    try:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"no READY from contract.mjs in {READY_TIMEOUT} s:\n{await output(True)}")
        lines.append(line.decode())
        assert line.strip() == b"READY", f"contract.mjs did not get ready:\n{await output()}"

        async with server.http("billing", "service") as http:
            response = await http.post("/api/notifications", json={
                "user_id": "alice", "type": "t", "title": "hello", "message": "m",
            })
        assert response.status_code == 201, response.text
        created = response.json()

        try:
            rest = (await asyncio.wait_for(process.stdout.read(), RESULT_TIMEOUT)).decode()
        except TimeoutError:
            pytest.fail(f"contract.mjs did not finish in {RESULT_TIMEOUT} s:\n{await output(True)}")
        lines.append(rest)
        report = await output()
        assert process.returncode == 0, f"contract.mjs failed:\n{report}"
        result_lines = rest.strip().splitlines()
        assert len(result_lines) == 1, f"expected one JSON result line:\n{report}"
        return json.loads(result_lines[0]), created
    finally:
        await _kill(process)
        if not stderr_task.done():
            stderr_task.cancel()


async def test_official_js_client_polling_then_websocket(
    node: str, server: RunningServer
) -> None:
    result, created = await _run_contract(server, node)
    nid = created["id"]
    assert result["ok"] is True

    # Default transport start: the engine opened on polling, then upgraded to WebSocket,
    # and everything after the upgrade ran on it.
    assert result["firstTransport"] == "polling"
    assert result["upgradedTo"] == "websocket"
    assert result["transport"] == "websocket"
    assert result["transportAtEnd"] == "websocket"

    # Auth: greeting for a good token, the contract's message for a refused one.
    assert result["connectionStatus"] == {"status": "connected", "user_id": "alice"}
    assert result["badToken"]["message"] == "Authentication failed"

    # The live notification is the HTTP representation, field for field.
    assert result["notification"] == created

    # ack -> delivered; markAsRead -> read; both broadcast as notificationStatus.
    assert result["ackReply"]["ok"] is True
    delivered = result["statusAfterAck"]
    assert delivered["id"] == nid and delivered["status"] == "delivered"
    assert delivered["delivered_at"] is not None
    assert result["markAsReadReply"]["ok"] is True
    read = result["statusAfterRead"]
    assert read["id"] == nid and read["status"] == "read"
    assert read["read_at"] is not None

    assert result["subscribeReply"] == {"ok": True, "subscribed": ["orders"],
                                        "denied": ["user:bob"]}

    # A malformed event: an error event and a failing ack with the same error.
    error = result["errorEvent"]
    assert set(error) >= {"code", "message"}
    assert result["malformedReply"] == {"ok": False, "error": error}

    # The replay, on the same (still open) connection, before its ack.
    missed = result["missed"]
    assert missed["reply"]["ok"] is True
    assert missed["reply"]["count"] == len(missed["replayedBeforeAck"]) >= 1
    replayed = {n["id"]: n for n in missed["replayedBeforeAck"]}
    assert replayed[nid]["status"] == "read"
    assert replayed[nid]["read_at"] is not None

    # The server's record agrees with what the JS client was told.
    async with server.http("alice") as http:
        stored = (await http.get(f"/api/notifications/{nid}")).json()
    assert stored["status"] == "read"
    assert stored["read_at"] == read["read_at"]
