"""`/api/users/{user_id}/contact`: who may read and write it, what it may hold, partial
updates, and the batch read the delivery workers use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import RunningServer
from tidings.store import contacts as contact_store

pytestmark = pytest.mark.both_databases

FULL = {"email": "alice@example.com", "phone": "+41446681800",
        "locale": "de_AT", "timezone": "Europe/Vienna",
        "quiet_hours": {"start": "22:00", "end": "07:00"}}


async def test_user_puts_and_gets_own_contact_through_me(server: RunningServer) -> None:
    async with server.http("alice") as http:
        put = await http.put("/api/users/me/contact", json=FULL)
        got = await http.get("/api/users/alice/contact")
    assert put.status_code == 200
    body = put.json()
    assert {k: v for k, v in body.items() if k != "updated_at"} == {
        "user_id": "alice", "slack_user_id": None, **FULL}
    assert body["updated_at"].endswith("Z")
    assert got.status_code == 200 and got.json() == body


async def test_get_without_contact_is_404(server: RunningServer) -> None:
    async with server.http("alice") as http:
        response = await http.get("/api/users/me/contact")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_fields_left_out_keep_their_value_and_null_clears(server: RunningServer) -> None:
    async with server.http("alice") as http:
        await http.put("/api/users/me/contact", json=FULL)
        kept = (await http.put("/api/users/me/contact", json={"locale": "en"})).json()
        cleared = (await http.put("/api/users/me/contact",
                                  json={"email": None, "quiet_hours": None})).json()
    assert kept["email"] == FULL["email"] and kept["locale"] == "en"
    assert kept["timezone"] == "Europe/Vienna" and kept["quiet_hours"] == FULL["quiet_hours"]
    assert cleared["email"] is None and cleared["quiet_hours"] is None
    assert cleared["locale"] == "en" and cleared["timezone"] == "Europe/Vienna"


async def test_empty_put_creates_an_empty_contact(server: RunningServer) -> None:
    async with server.http("alice") as http:
        body = (await http.put("/api/users/me/contact", json={})).json()
    assert body["user_id"] == "alice"
    assert [body[k] for k in ("email", "locale", "timezone", "quiet_hours")] == [None] * 4


@pytest.mark.parametrize(("given", "stored"), [
    ("en", "en"), ("de_AT", "de_AT"), ("pt-BR", "pt_BR"), ("zh-Hant-TW", "zh_Hant_TW"),
])
async def test_locales_are_stored_as_babel_names_them(
    server: RunningServer, given: str, stored: str
) -> None:
    async with server.http("alice") as http:
        response = await http.put("/api/users/me/contact", json={"locale": given})
    assert response.status_code == 200
    assert response.json()["locale"] == stored


async def test_start_equal_to_end_means_no_quiet_hours(server: RunningServer) -> None:
    async with server.http("alice") as http:
        await http.put("/api/users/me/contact", json=FULL)
        body = (await http.put("/api/users/me/contact",
                               json={"quiet_hours": {"start": "08:00", "end": "08:00"}})).json()
    assert body["quiet_hours"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-address"}, "email"),
    ({"email": "a b@example.com"}, "email"),
    ({"email": "alice@example..com"}, "email"),
    ({"email": 7}, "email"),
    ({"locale": "xx_YY"}, "locale"),
    ({"locale": "klingon"}, "locale"),
    ({"locale": "en;rm -rf"}, "locale"),
    ({"locale": ""}, "locale"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "../etc/passwd"}, "timezone"),
    ({"timezone": "/etc/localtime"}, "timezone"),
    ({"timezone": "Europe/../../etc/passwd"}, "timezone"),
    ({"timezone": "Europe/Vienna\n"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "22:00", "end": "7:00"}}, "quiet_hours.end"),
    ({"quiet_hours": {"start": "10pm", "end": "07:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "22:60", "end": "07:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "22:00"}}, "quiet_hours.end"),
    ({"quiet_hours": "22:00-07:00"}, "quiet_hours"),
    ({"email": "\ud800@example.com"}, "email"),
    ({"email": "al\u0000ice@example.com"}, "email"),
    ({"phone": "+43 1 234"}, "phone"),
])
async def test_bad_contact_fields_answer_422_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    async with server.http("alice") as http:
        # Encoded here: httpx would refuse the lone surrogates some cases carry.
        response = await http.put("/api/users/me/contact", content=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
        after = await http.get("/api/users/me/contact")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert after.status_code == 404  # nothing was stored


@pytest.mark.parametrize("user", ["a%00b", "x" * 256])
async def test_unstorable_user_ids_in_the_path_are_422(server: RunningServer, user: str) -> None:
    async with server.http("svc", "service") as http:
        put = await http.put(f"/api/users/{user}/contact", json={})
        get = await http.get(f"/api/users/{user}/contact")
    assert (put.status_code, get.status_code) == (422, 422)
    assert put.json()["error"]["field"] == "user_id"


async def test_malformed_json_is_400(server: RunningServer) -> None:
    async with server.http("alice") as http:
        response = await http.put("/api/users/me/contact", content=b"{",
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 400


async def test_user_cannot_see_or_write_another_users_contact(server: RunningServer) -> None:
    async with server.http("bob") as http:
        await http.put("/api/users/me/contact", json={"email": "bob@example.com"})
    async with server.http("alice") as http:
        read = await http.get("/api/users/bob/contact")
        write = await http.put("/api/users/bob/contact", json={"email": "evil@example.com"})
    async with server.http("bob") as http:
        still = (await http.get("/api/users/me/contact")).json()
    assert read.status_code == 404 and write.status_code == 404
    assert still["email"] == "bob@example.com"


@pytest.mark.parametrize("role", ["service", "admin"])
async def test_service_and_admin_manage_anyones_contact(
    server: RunningServer, role: str
) -> None:
    async with server.http("ops", role) as http:
        put = await http.put("/api/users/carol/contact", json={"email": "carol@example.com"})
        got = await http.get("/api/users/carol/contact")
        own = await http.get("/api/users/me/contact")
    assert put.status_code == 200 and put.json()["user_id"] == "carol"
    assert got.json() == put.json()
    assert own.status_code == 404  # `me` is the caller, who has none
    async with server.http("carol") as http:
        assert (await http.get("/api/users/me/contact")).json() == put.json()


async def test_without_a_token_is_401(server: RunningServer) -> None:
    async with server.http() as http:
        response = await http.get("/api/users/me/contact")
    assert response.status_code == 401


async def test_contact_of_reads_many_users_at_once(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        for user in ("u1", "u2"):
            await http.put(f"/api/users/{user}/contact",
                           json={**FULL, "email": f"{user}@example.com"})
    async with server.services.db.begin() as conn:
        found = await contact_store.contact_of(conn, ["u1", "u2", "nobody", "u1"])
    assert set(found) == {"u1", "u2"}
    assert found["u2"].email == "u2@example.com"
    assert found["u1"].locale == "de_AT" and found["u1"].timezone == "Europe/Vienna"
    assert found["u1"].quiet_hours is not None and found["u1"].quiet_hours.start == "22:00"


@pytest.mark.parametrize(("given", "stored"), [
    ("+41446681800", "+41446681800"),
    ("+41 44 668 18 00", "+41446681800"),
    ("+1 (415) 555-2671", "+14155552671"),
])
async def test_a_phone_number_is_stored_as_e164(
    server: RunningServer, given: str, stored: str
) -> None:
    async with server.http("alice") as http:
        body = (await http.put("/api/users/me/contact", json={"phone": given})).json()
        kept = (await http.put("/api/users/me/contact", json={"locale": "en"})).json()
        cleared = (await http.put("/api/users/me/contact", json={"phone": None})).json()
    assert body["phone"] == stored and kept["phone"] == stored
    assert cleared["phone"] is None


@pytest.mark.parametrize("phone", [
    "0446681800",  # national: no region is guessed
    "41446681800",  # the country code without its "+"
    "+41 44",  # too short to be a number
    "+999 1234 5678",  # no such country code
    "+abc",
    "",
    "+" + "1" * 70,  # longer than any input is allowed to be
    12345,
])
async def test_a_phone_number_that_is_not_international_and_valid_is_422(
    server: RunningServer, phone: Any
) -> None:
    async with server.http("alice") as http:
        response = await http.put("/api/users/me/contact", json={"phone": phone})
        after = await http.get("/api/users/me/contact")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "phone"
    assert after.status_code == 404
