"""One-click unsubscribe (RFC 8058): the POST turns off exactly the email flag of the
token's (channel, type), copying the other flags from the row that applied; the GET only
shows a button; forged or damaged tokens answer 400 and change nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import RunningServer, stored_media
from tidings.config.settings import DEV_SIGNING_SECRET_FILE, Settings, load_settings
from tidings.services.unsubscribe import (
    BadToken,
    mint_token,
    read_token,
    signing_key,
    unsubscribe_url,
)

pytestmark = pytest.mark.both_databases

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def _preferences(server: RunningServer, user: str) -> dict[tuple[str, str], Any]:
    async with server.http(user) as http:
        items = (await http.get("/api/notifications/preferences")).json()["items"]
    return {(row["channel"], row["notification_type"]):
            (row["email_enabled"], row["push_enabled"], row["in_app_enabled"])
            for row in items}


async def _put(server: RunningServer, user: str, rows: list[dict[str, Any]]) -> None:
    async with server.http(user) as http:
        response = await http.post("/api/notifications/preferences/bulk", json={"items": rows})
    assert response.status_code == 200


def _path(server: RunningServer, user: str = "alice", channel: str = "orders",
          type_: str = "shipped") -> str:
    return f"/unsubscribe/{server.services.unsubscribe.token(user, channel, type_)}"


async def test_link_is_public_url_slash_unsubscribe_slash_token(server: RunningServer) -> None:
    link = server.services.unsubscribe.link("alice", "orders", "shipped")
    token = link.rsplit("/", 1)[1]
    assert link == f"{server.settings.public_url}/unsubscribe/{token}"
    assert re.fullmatch(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", token)
    assert unsubscribe_url("https://n.example.com/", "t") == "https://n.example.com/unsubscribe/t"


async def test_one_click_post_turns_email_off_for_exactly_that_pair(
    server: RunningServer
) -> None:
    async with server.http() as anon:
        response = await anon.post(_path(server), data=ONE_CLICK)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert await _preferences(server, "alice") == {("orders", "shipped"): (False, True, True)}
    assert await _preferences(server, "bob") == {}


async def test_multipart_and_empty_bodies_work_too(server: RunningServer) -> None:
    async with server.http() as anon:
        multipart = await anon.post(_path(server, type_="a"),
                                    files={"List-Unsubscribe": (None, "One-Click")})
        empty = await anon.post(_path(server, type_="b"))
    assert (multipart.status_code, empty.status_code) == (200, 200)
    assert await _preferences(server, "alice") == {
        ("orders", "a"): (False, True, True), ("orders", "b"): (False, True, True)}


async def test_other_flags_come_from_the_most_specific_matching_row(
    server: RunningServer
) -> None:
    rows = [
        {"channel": "*", "notification_type": "*", "email_enabled": True,
         "push_enabled": False, "in_app_enabled": True},
        {"channel": "orders", "notification_type": "*", "email_enabled": True,
         "push_enabled": True, "in_app_enabled": False},
        {"channel": "*", "notification_type": "shipped", "email_enabled": True,
         "push_enabled": False, "in_app_enabled": False},
    ]
    await _put(server, "alice", rows)
    before = await _preferences(server, "alice")
    async with server.http() as anon:
        assert (await anon.post(_path(server), data=ONE_CLICK)).status_code == 200
        assert (await anon.post(_path(server, channel="news"), data=ONE_CLICK)).status_code == 200
    after = await _preferences(server, "alice")
    # (orders, *) applied to (orders, shipped); (*, shipped) to (news, shipped).
    assert after == {**before, ("orders", "shipped"): (False, True, False),
                     ("news", "shipped"): (False, False, False)}


async def test_an_existing_exact_row_keeps_its_other_flags(server: RunningServer) -> None:
    await _put(server, "alice", [{"channel": "orders", "notification_type": "shipped",
                                  "email_enabled": True, "push_enabled": False,
                                  "in_app_enabled": True}])
    async with server.http() as anon:
        first = await anon.post(_path(server), data=ONE_CLICK)
        second = await anon.post(_path(server), data=ONE_CLICK)
    assert (first.status_code, second.status_code) == (200, 200)
    assert await _preferences(server, "alice") == {("orders", "shipped"): (False, False, True)}


async def test_wildcard_pairs_can_be_unsubscribed(server: RunningServer) -> None:
    async with server.http() as anon:
        response = await anon.post(_path(server, channel="*", type_="*"))
    assert response.status_code == 200
    assert await _preferences(server, "alice") == {("*", "*"): (False, True, True)}


async def test_get_shows_a_button_and_changes_nothing(server: RunningServer) -> None:
    path = _path(server)
    async with server.http() as anon:
        page = await anon.get(path)
        again = await anon.get(path)
    assert (page.status_code, again.status_code) == (200, 200)
    assert "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-store"
    form = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert form is not None
    assert path.endswith("/" + form.group(1))  # relative: resolves to the same URL
    assert "<button" in page.text and "orders / shipped" in page.text
    assert await _preferences(server, "alice") == {}


async def test_unsubscribed_email_is_no_longer_chosen(server: RunningServer) -> None:
    async with server.http() as anon:
        await anon.post(_path(server), data=ONE_CLICK)
    async with server.http("svc", "service") as http:
        note = (await http.post("/api/notifications", json={
            "user_id": "alice", "channel": "orders", "type": "shipped", "title": "t",
            "message": "m"})).json()
    assert await stored_media(server, note["id"]) == {"in_app", "push", "sms", "chat"}


def _tampered(token: str) -> list[str]:
    payload, tag = token.split(".")
    flip = {"A": "B"}.get(payload[0], "A")
    forged = mint_token(b"another server's key", "alice", "orders", "shipped")
    other_user = mint_token(b"another server's key", "mallory", "orders", "shipped")
    return [
        flip + payload[1:] + "." + tag,  # payload changed
        payload + "." + ("A" if tag[0] != "A" else "B") + tag[1:],  # tag changed
        payload + "." + tag[:-2],  # cut short
        payload,  # no tag at all
        payload + "." + tag + ".x",
        payload + "." + tag + "=",
        payload + ".!!!",
        payload + ".AAAAA",  # not a whole number of bytes
        forged,
        other_user.split(".")[0] + "." + tag,  # another payload with this tag
        "x" * 3000,
        "nonsense",
    ]


async def test_tampered_tokens_answer_400_and_change_nothing(server: RunningServer) -> None:
    token = server.services.unsubscribe.token("alice", "orders", "shipped")
    async with server.http() as anon:
        for bad in _tampered(token):
            get = await anon.get(f"/unsubscribe/{bad}")
            post = await anon.post(f"/unsubscribe/{bad}", data=ONE_CLICK)
            assert (get.status_code, post.status_code) == (400, 400), bad
            assert "not valid" in post.text
    assert await _preferences(server, "alice") == {}


@pytest.mark.parametrize("payload", [
    b"{}", b'["alice","orders"]', b'["alice","orders",3]', b'["","orders","x"]',
    b'["alice","bad channel","x"]', b"\xff\xfe", b"not json",
])
def test_well_signed_but_malformed_payloads_are_refused(payload: bytes) -> None:
    key = b"k" * 32
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    tag = hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    token = body + "." + base64.urlsafe_b64encode(tag).rstrip(b"=").decode()
    with pytest.raises(BadToken, match="not valid"):
        read_token(key, token)


def test_tokens_round_trip_any_user_id() -> None:
    key = b"k" * 32
    for user in ("alice", "ü/ser with spaces", "x" * 255):
        target = read_token(key, mint_token(key, user, "c", "*"))
        assert (target.user_id, target.channel, target.notification_type) == (user, "c", "*")


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _public_key_pem() -> str:
    """A real public key: a deployment that verifies tokens with one has no JWT_SECRET."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_signing_key_defaults_to_one_derived_from_jwt_secret() -> None:
    from_jwt = signing_key(_settings(jwt_secret="s" * 32))
    own = signing_key(_settings(jwt_secret="s" * 32, signing_secret="other"))
    assert from_jwt != own and from_jwt != b"s" * 32 and len(from_jwt) == 32
    # Neither set (settings built by hand): a random key, different every time.
    pem = _public_key_pem()
    assert signing_key(_settings(jwt_public_key=pem)) != signing_key(
        _settings(jwt_public_key=pem))


def test_load_settings_persists_a_signing_secret_without_jwt_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SIGNING_SECRET", "JWT_SECRET", "JWT_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    pem = _public_key_pem()
    first = load_settings(_env_file=None, jwt_public_key=pem)
    second = load_settings(_env_file=None, jwt_public_key=pem)
    secret_file = tmp_path / DEV_SIGNING_SECRET_FILE
    assert first.signing_secret and first.signing_secret == second.signing_secret
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert load_settings(_env_file=None, jwt_secret="j" * 32).signing_secret == "j" * 32
    assert load_settings(_env_file=None, jwt_secret="j" * 32,
                         signing_secret="mine").signing_secret == "mine"


def _spellings(text: str) -> list[str]:
    """Other base64url spellings of the bytes `text` encodes: the unused low bits of its
    last character set otherwise, padding added, the standard alphabet."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {2: 4, 3: 2}.get(len(text) % 4, 0)  # bits the last character does not use
    last = alphabet.index(text[-1])
    variants = [text[:-1] + alphabet[(last >> spare << spare) | low]
                for low in range(1 << spare)]
    variants += [text + "=" * (-len(text) % 4), text.replace("-", "+").replace("_", "/")]
    return [variant for variant in dict.fromkeys(variants) if variant != text]


def test_only_the_canonical_spelling_of_a_token_is_accepted() -> None:
    key = b"k" * 32
    token = mint_token(key, "alice", "orders", "shipped")
    payload, tag = token.split(".")
    others = [f"{payload}.{variant}" for variant in _spellings(tag)]
    assert len(others) >= 15  # a 16-byte tag leaves 4 unused bits: 16 spellings
    for other in others:
        with pytest.raises(BadToken, match="not valid"):
            read_token(key, other)
    assert read_token(key, token).user_id == "alice"


async def test_another_spelling_of_a_link_answers_400_and_changes_nothing(
    server: RunningServer
) -> None:
    token = server.services.unsubscribe.token("alice", "orders", "shipped")
    payload, tag = token.split(".")
    async with server.http() as anon:
        for variant in _spellings(tag)[:3]:
            post = await anon.post(f"/unsubscribe/{payload}.{variant}", data=ONE_CLICK)
            assert post.status_code == 400, variant
    assert await _preferences(server, "alice") == {}
