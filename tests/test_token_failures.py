"""Tokens against a real server: whatever is wrong with a token (a signature made for the
other kind of public key, claims no float can hold, garbage) is a 401 over HTTP and a
refused Socket.IO connection, never a 500."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import SECRET, RunningServer, make_settings, start_server

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def token(private: object, algorithm: str, sub: str = "alice") -> str:
    claims = {"sub": sub, "roles": ["service"], "exp": int(time.time()) + 600}
    return jwt.encode(claims, private, algorithm=algorithm)  # type: ignore[arg-type]


@pytest.fixture(params=["rsa", "ec"])
async def keyed_server(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[tuple[RunningServer, str, str]]:
    """A server verifying with one kind of key; yields it with a good token and a token
    signed by the other kind of key."""
    if request.param == "rsa":
        good, wrong = token(RSA_KEY, "RS256"), token(EC_KEY, "ES256")
        key = public_pem(RSA_KEY)
    else:
        good, wrong = token(EC_KEY, "ES256"), token(RSA_KEY, "RS256")
        key = public_pem(EC_KEY)
    running = await start_server(make_settings(database_url, jwt_secret="", jwt_public_key=key))
    try:
        yield running, good, wrong
    finally:
        await running.stop()


async def test_a_token_signed_for_the_other_kind_of_key_answers_401(keyed_server) -> None:
    server, good, wrong = keyed_server
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        accepted = await http.get("/api/notifications",
                                  headers={"Authorization": f"Bearer {good}"})
        refused = await http.get("/api/notifications",
                                 headers={"Authorization": f"Bearer {wrong}"})
        hs256 = await http.get("/api/notifications", headers={
            "Authorization": f"Bearer {token('x' * 32, 'HS256')}"})
    assert accepted.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"
    assert hs256.status_code == 401


async def test_a_socket_with_a_token_for_the_other_kind_of_key_is_refused(
    keyed_server,
) -> None:
    server, good, wrong = keyed_server
    accepted = socketio.AsyncClient(reconnection=False)
    await accepted.connect(server.url, auth={"token": good}, transports=["websocket"],
                           wait_timeout=5)
    assert accepted.connected
    await accepted.disconnect()

    refused = socketio.AsyncClient(reconnection=False)
    errors: list[dict] = []
    refused.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(server.url, auth={"token": wrong}, transports=["websocket"],
                              wait_timeout=5)
    assert errors and errors[0]["message"] == "Authentication failed"


async def test_odd_but_well_signed_or_malformed_tokens_never_answer_500(
    server: RunningServer,
) -> None:
    far_future = jwt.encode({"sub": "alice", "exp": 10**400}, SECRET, algorithm="HS256")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answers = {
            value: (await http.get("/api/notifications",
                                   headers={"Authorization": f"Bearer {value}".encode()})
                    ).status_code
            for value in (far_future, "a.b", "a.b.c", "\u00e9t\u00e9", token("x" * 32, "HS256"))
        }
    assert answers.pop(far_future) == 200  # validly signed: PyJWT accepts any integer exp
    assert set(answers.values()) == {401}
