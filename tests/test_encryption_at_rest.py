"""Encryption at rest end to end (SQLite and PostgreSQL): parts a producer marks sensitive
are plaintext over HTTP, Socket.IO and email, and sealed in the database; a value moved to
another row reads as a placeholder; `tidings keys rotate` moves every value onto the new
key; marking without keys, and bad marks, are 422s."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import SECRET, Client, RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tidings.cli import main
from tidings.domain.model import isoformat, utcnow
from tidings.store.database import Database
from tidings.store.reference_tables import contacts

pytestmark = pytest.mark.both_databases

KEY_A = "a:" + base64.b64encode(b"\x01" * 32).decode()
KEY_B = "b:" + base64.b64encode(b"\x02" * 32).decode()
SECRETS = ("Card ending 4242", "one-time code 913442", "IBAN DE89370400440532013000")
NOTE: dict[str, Any] = {
    "user_id": "alice", "type": "payment", "title": SECRETS[0], "message": SECRETS[1],
    "data": {"order": 7, "iban": SECRETS[2]},
    "sensitive": ["title", "message", "data.iban"],
}


@pytest.fixture
async def sealed_server(database_url: str) -> AsyncIterator[RunningServer]:
    running = await start_server(make_settings(database_url, encryption_keys=KEY_A))
    try:
        yield running
    finally:
        await running.stop()


async def connect(server: RunningServer, user: str) -> Client:
    client = Client()
    await client.sio.connect(server.url, auth={"token": server.token(user)},
                             transports=["websocket"], wait_timeout=5)
    await client.next("connectionStatus")
    return client


async def create(server: RunningServer, body: dict[str, Any],
                 key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def raw(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows read with plain SQL, as a database dump would see them."""
    db = Database(url, pool_size=1)
    try:
        async with db.begin() as conn:
            return [tuple(row) for row in await conn.execute(sa.text(sql), params)]
    finally:
        await db.dispose()


def plain(note: dict[str, Any]) -> bool:
    return (note["title"], note["message"], note["data"]) == (
        SECRETS[0], SECRETS[1], {"order": 7, "iban": SECRETS[2]})


def leaks(rows: list[tuple[Any, ...]]) -> list[str]:
    text = repr(rows)
    return [secret for secret in (*SECRETS, "4242", "913442", "DE89") if secret in text]


async def test_sensitive_parts_are_plaintext_to_clients_and_sealed_in_the_database(
    sealed_server: RunningServer, database_url: str
) -> None:
    alice = await connect(sealed_server, "alice")
    try:
        since = isoformat(utcnow() - timedelta(seconds=1))
        created = await create(sealed_server, NOTE, key="pay-7")
        assert plain(created)
        assert plain(await alice.next("notification"))
        async with sealed_server.http("alice") as http:
            listed = (await http.get("/api/notifications")).json()["items"]
            one = (await http.get(f"/api/notifications/{created['id']}")).json()
            read = (await http.put(f"/api/notifications/{created['id']}/read")).json()
        assert plain(listed[0]) and plain(one) and plain(read)
        assert (await alice.call("requestMissedNotifications", {"since": since}))["count"] == 1
        assert plain(await alice.next("notification"))
    finally:
        await alice.close()
    rows = await raw(database_url, "SELECT title, message, data, sensitive FROM notifications")
    assert leaks(rows) == []
    ((title, message, data, sensitive),) = rows
    assert title.startswith("enc:v1:a:") and message.startswith("enc:v1:a:")
    data = data if isinstance(data, dict) else json.loads(data)
    sensitive = sensitive if isinstance(sensitive, list) else json.loads(sensitive)
    assert sensitive == NOTE["sensitive"]
    assert data["order"] == 7 and set(data["iban"]) == {"$enc"}
    assert "sensitive" not in created
    kept = await raw(database_url, "SELECT response FROM idempotency_keys")
    assert len(kept) == 1 and leaks(kept) == []
    # The repeat answers the first result, in plaintext, and creates nothing.
    assert plain(await create(sealed_server, NOTE, key="pay-7"))
    assert len(await raw(database_url, "SELECT id FROM notifications")) == 1


async def test_a_scheduled_sensitive_notification_is_emitted_in_plaintext(
    sealed_server: RunningServer,
) -> None:
    alice = await connect(sealed_server, "alice")
    try:
        due = isoformat(utcnow() + timedelta(milliseconds=300))
        await create(sealed_server, {**NOTE, "scheduled_at": due})
        assert plain(await alice.next("notification"))
    finally:
        await alice.close()


async def test_a_value_moved_to_another_row_reads_as_a_placeholder_and_is_logged(
    sealed_server: RunningServer, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = await create(sealed_server, NOTE)
    second = await create(sealed_server, {**NOTE, "title": "Another"})
    db = sealed_server.services.db
    async with db.begin() as conn:
        await conn.execute(sa.text(
            "UPDATE notifications SET title = (SELECT title FROM notifications WHERE id = :a) "
            "WHERE id = :b"), {"a": first["id"], "b": second["id"]})
    with caplog.at_level(logging.ERROR, logger="tidings.store.sealing"):
        async with sealed_server.http("alice") as http:
            moved = await http.get(f"/api/notifications/{second['id']}")
            listed = await http.get("/api/notifications")
    assert moved.status_code == 200
    assert moved.json()["title"] == "[undecryptable]"
    assert moved.json()["message"] == SECRETS[1]  # the row's own values still read
    titles = [item["title"] for item in listed.json()["items"]]
    assert titles == ["[undecryptable]", SECRETS[0]]
    assert second["id"] in caplog.text and "title" in caplog.text
    assert leaks([(caplog.text,)]) == []


async def test_the_email_carries_the_plaintext(database_url: str) -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        running = await start_server(make_settings(
            database_url, encryption_keys=KEY_A, smtp_host="127.0.0.1", smtp_port=port,
            smtp_starttls=False, email_from="tidings@example.test"))
        try:
            now = utcnow()
            async with running.services.db.begin() as conn:
                await conn.execute(sa.insert(contacts).values(
                    user_id="alice", email="alice@example.test", created_at=now,
                    updated_at=now))
            await create(running, {**NOTE, "media": ["email"]})
            await asyncio.wait_for(handler.arrived.wait(), 10)
        finally:
            await running.stop()
    (mail,) = handler.received
    assert mail.message["Subject"] == SECRETS[0]
    assert SECRETS[1] in mail.message.get_body(("plain",)).get_content()


async def test_marking_anything_sensitive_without_keys_is_refused(
    server: RunningServer, database_url: str
) -> None:
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json=NOTE)
        untouched = await http.post("/api/notifications", json={**NOTE, "sensitive": []})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "sensitive"
    assert "encryption at rest is not configured" in error["message"]
    assert untouched.status_code == 201  # an empty list marks nothing
    assert len(await raw(database_url, "SELECT id FROM notifications")) == 1


@pytest.mark.parametrize(("sensitive", "field", "words"), [
    (["title", "body"], "sensitive.1", "must be 'title', 'message', 'data'"),
    (["data."], "sensitive.0", "must be"),
    ([7], "sensitive.0", "string"),
    ("title", "sensitive", "list"),
    (["title", "title"], "sensitive.1", "given twice"),
    (["data.nope"], "sensitive.0", "data has no key 'nope'"),
    (["data", "data.iban"], "sensitive.1", "covered by 'data'"),
    (["data.iban", "data"], "sensitive.1", "covers the data keys"),
])
async def test_bad_sensitive_entries_are_refused_naming_the_entry(
    sealed_server: RunningServer, sensitive: Any, field: str, words: str
) -> None:
    async with sealed_server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, "sensitive": sensitive})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert words in response.json()["error"]["message"]


async def titles_with(database_url: str, keys: str) -> list[str]:
    running = await start_server(make_settings(database_url, encryption_keys=keys))
    try:
        async with running.http("alice") as http:
            items = (await http.get("/api/notifications")).json()["items"]
        return [item["title"] for item in items]
    finally:
        await running.stop()


def rotate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, keys: str,
           *args: str) -> int:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", keys)
    return main(["keys", "rotate", *args])


async def test_rotation_moves_every_value_onto_the_new_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    running = await start_server(make_settings(database_url, encryption_keys=KEY_A))
    try:
        for number in range(5):
            await create(running, {**NOTE, "data": {"order": number, "iban": SECRETS[2]}},
                         key=f"k{number}" if number < 3 else None)
        await create(running, {**NOTE, "sensitive": []})  # nothing sealed: untouched
    finally:
        await running.stop()
    code = await asyncio.to_thread(rotate, monkeypatch, tmp_path, database_url,
                                   f"{KEY_B},{KEY_A}", "--batch-size", "2")
    assert code == 0
    # 5 notifications and 3 kept answers, 3 sealed values each.
    assert "rewrote 24 value(s) in 8 row(s)" in capsys.readouterr().out
    rows = await raw(database_url,
                     "SELECT title FROM notifications WHERE sensitive IS NOT NULL")
    assert len(rows) == 5 and all(title.startswith("enc:v1:b:") for (title,) in rows)
    assert "enc:v1:a:" not in repr(await raw(database_url, "SELECT response FROM "
                                             "idempotency_keys"))
    again = await asyncio.to_thread(rotate, monkeypatch, tmp_path, database_url,
                                    f"{KEY_B},{KEY_A}")
    assert again == 0 and "rewrote 0 value(s)" in capsys.readouterr().out
    assert await titles_with(database_url, KEY_A) == [SECRETS[0]] + ["[undecryptable]"] * 5
    assert await titles_with(database_url, KEY_B) == [SECRETS[0]] * 6
    running = await start_server(make_settings(database_url, encryption_keys=KEY_B))
    try:
        # The kept answer still opens.
        again = await create(running, {**NOTE, "data": {"order": 1, "iban": SECRETS[2]}},
                             key="k1")
        assert (again["title"], again["data"]["iban"]) == (SECRETS[0], SECRETS[2])
    finally:
        await running.stop()


async def test_rotation_reports_values_it_cannot_open_and_fails(
    sealed_server: RunningServer, database_url: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first = await create(sealed_server, NOTE)
    second = await create(sealed_server, NOTE)
    async with sealed_server.services.db.begin() as conn:
        await conn.execute(sa.text(
            "UPDATE notifications SET message = (SELECT message FROM notifications "
            "WHERE id = :a) WHERE id = :b"), {"a": first["id"], "b": second["id"]})
    code = await asyncio.to_thread(rotate, monkeypatch, tmp_path, database_url,
                                   f"{KEY_B},{KEY_A}")
    captured = capsys.readouterr()
    assert code == 1
    assert "rewrote 5 value(s) in 2 row(s)" in captured.out
    assert "1 value(s) could not be decrypted" in captured.err


def test_rotation_needs_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert rotate(monkeypatch, tmp_path, url, "") == 2
    assert "ENCRYPTION_KEYS" in capsys.readouterr().err
    assert rotate(monkeypatch, tmp_path, url, KEY_A, "--batch-size", "0") == 2
    assert rotate(monkeypatch, tmp_path, url, KEY_A) == 1  # not migrated
    assert "tidings migrate" in capsys.readouterr().err


def test_keys_generate_prints_a_usable_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert main(["keys", "generate", "--id", "spring"]) == 0
    entry = capsys.readouterr().out.strip()
    assert entry.startswith("spring:")
    assert make_settings("sqlite://", encryption_keys=entry).keyring() is not None
    assert main(["keys", "generate", "--id", "bad id"]) == 2


@pytest.mark.parametrize(("env", "words"), [
    ({"ENCRYPTION_KEYS": "a:c2hvcnQ="}, "ENCRYPTION_KEYS: key 'a' must be 32 random bytes"),
    ({"ENCRYPTION_KEYS": KEY_A, "ENCRYPTION_KEYS_FILE": "keys.txt"}, "set one, not both"),
    ({"ENCRYPTION_KEYS_FILE": "missing.txt"}, "ENCRYPTION_KEYS_FILE: cannot read the file"),
    ({"ENCRYPTION_KEYS_FILE": "empty.txt"}, "ENCRYPTION_KEYS_FILE: the file holds no key"),
    ({"ENCRYPTION_KEYS_FILE": "bad.txt"}, "ENCRYPTION_KEYS_FILE: entry 1 must be"),
])
def test_bad_keys_stop_every_command_naming_the_setting(
    env: dict[str, str], words: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("# no key yet\n")
    (tmp_path / "bad.txt").write_text("oops\n")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["token", "--sub", "a"]) == 2
    err = capsys.readouterr().err
    assert words in err and KEY_A.split(":")[1] not in err


def test_keys_may_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"# current first\n{KEY_B}\n{KEY_A}\n")
    keyring = make_settings("sqlite://", encryption_keys_file=str(path)).keyring()
    assert keyring is not None and [key.id for key in keyring.keys] == ["b", "a"]
    assert make_settings("sqlite://").keyring() is None
