"""HTTPS and WSS on the service's one port, with a certificate from a throwaway CA."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
import socketio
import trustme

from tests.conftest import (
    EVENT_TIMEOUT,
    SECRET,
    RunningServer,
    free_port,
    make_settings,
    start_server,
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[str, str]]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    yield str(cert_file), str(key_file)


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def tls_server(database_url: str, tls_files: tuple[str, str]) -> AsyncIterator[RunningServer]:
    cert_file, key_file = tls_files
    running = await start_server(make_settings(
        database_url, tls_cert_file=cert_file, tls_key_file=key_file))
    running.url = running.url.replace("http://", "https://", 1)
    try:
        yield running
    finally:
        await running.stop()


async def test_https_request_and_wss_socket_work_together(
    tls_server: RunningServer, client_context: ssl.SSLContext
) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context))
    sio = socketio.AsyncClient(reconnection=False, http_session=session)
    notes: asyncio.Queue[dict] = asyncio.Queue()
    sio.on("notification", notes.put_nowait)
    try:
        await sio.connect(tls_server.url, auth={"token": tls_server.token("alice")},
                          transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
        assert sio.transport() == "websocket" and sio.connected
        async with httpx.AsyncClient(
            base_url=tls_server.url, verify=client_context, timeout=10,
            headers={"Authorization": f"Bearer {tls_server.token('svc', 'service')}"},
        ) as http:
            created = await http.post("/api/notifications", json={
                "user_id": "alice", "type": "t", "title": "over tls", "message": "m"})
        assert created.status_code == 201
        received = await asyncio.wait_for(notes.get(), EVENT_TIMEOUT)
        assert received["id"] == created.json()["id"]
    finally:
        await sio.disconnect()
        await session.close()


async def test_plain_http_is_not_answered_on_a_tls_port(tls_server: RunningServer) -> None:
    plain = tls_server.url.replace("https://", "http://", 1)
    async with httpx.AsyncClient(base_url=plain, timeout=10) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get("/health")


async def test_serve_announces_https_and_answers_over_tls(
    tmp_path: Path, tls_files: tuple[str, str], client_context: ssl.SSLContext
) -> None:
    cert_file, key_file = tls_files
    port = free_port()
    env = {**os.environ, "JWT_SECRET": SECRET, "TLS_CERT_FILE": cert_file,
           "TLS_KEY_FILE": key_file}
    env.pop("DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidings", "serve", "--host", "127.0.0.1", "--port", str(port),
        cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        while True:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, "server exited before it listened"
            if b"Tidings listening" in line:
                break
        assert f"https://127.0.0.1:{port}".encode() in line
        async with httpx.AsyncClient(verify=client_context, timeout=10) as http:
            health = await http.get(f"https://127.0.0.1:{port}/health")
        assert health.status_code == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 20)
