"""The preference centre (contract section 11): the link route and who may ask for it, the
page in the contact's language, its form writing the same rows as the preference API and
the quiet hours as the contact API does, the refusal of bad, tampered and non-canonical
tokens, and the link in every email's footer (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tidings.api.preference_page import render_centre
from tidings.domain.preference_centre import CatalogueEntry
from tidings.services.preference_centre import PreferenceCentre

pytestmark = pytest.mark.both_databases

TOKEN = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


async def link_of(server: RunningServer, user: str = "alice") -> str:
    async with server.http("accounts", "service") as http:
        response = await http.get(f"/api/users/{user}/preference-link")
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


def path_of(server: RunningServer, url: str) -> str:
    prefix = server.settings.public_url.rstrip("/")
    assert url.startswith(prefix + "/preferences/")
    return url.removeprefix(prefix)


async def create(server: RunningServer, user: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"user_id": user, "type": "invoice", "channel": "billing", "title": "Invoice",
            "message": "Your invoice is ready", **fields}
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def preferences(server: RunningServer, user: str = "alice") -> dict[tuple[str, str], Any]:
    async with server.http(user) as http:
        items = (await http.get("/api/notifications/preferences")).json()["items"]
    return {(row["channel"], row["notification_type"]):
            (row["in_app_enabled"], row["email_enabled"], row["push_enabled"])
            for row in items}


async def put_contact(server: RunningServer, user: str, **fields: Any) -> dict[str, Any]:
    async with server.http("accounts", "service") as http:
        response = await http.put(f"/api/users/{user}/contact", json=fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


def form_of(page: str) -> list[tuple[str, str]]:
    """What a browser would submit from the page as it is (checked boxes, hidden and time
    fields), read from its markup."""
    fields: list[tuple[str, str]] = []
    for tag in re.findall(r"<input [^>]*>", page):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag))
        flags = set(re.findall(r"\s(checked|disabled)(?=[\s>])", tag))
        if "disabled" in flags or "name" not in attrs:
            continue
        if attrs.get("type") == "checkbox" and "checked" not in flags:
            continue
        fields.append((attrs["name"].replace("&#x27;", "'"), attrs.get("value", "")))
    return fields


async def post_form(client: httpx.AsyncClient, path: str,
                    fields: Sequence[tuple[str, str]]) -> httpx.Response:
    """A form body as a browser sends it (names may repeat, as `topic` does)."""
    return await client.post(path, content=urlencode(fields), headers={
        "Content-Type": "application/x-www-form-urlencoded"})


# -- the link route -------------------------------------------------------------------------

async def test_service_and_admin_get_the_link_of_any_user(server: RunningServer) -> None:
    url = await link_of(server)
    token = url.rsplit("/", 1)[1]
    assert url == f"{server.settings.public_url}/preferences/{token}"
    assert TOKEN.fullmatch(token)
    async with server.http("ops", "admin") as http:
        again = await http.get("/api/users/alice/preference-link")
    assert again.status_code == 200 and again.json() == {"url": url}
    assert await link_of(server, "bob") != url


async def test_the_link_route_refuses_no_token_a_plain_user_and_a_bad_id(
    server: RunningServer
) -> None:
    async with server.http() as anon:
        assert (await anon.get("/api/users/alice/preference-link")).status_code == 401
    async with server.http("alice") as alice:
        own = await alice.get("/api/users/alice/preference-link")
        other = await alice.get("/api/users/bob/preference-link")
    assert (own.status_code, other.status_code) == (403, 403)
    async with server.http("accounts", "service") as http:
        long = await http.get(f"/api/users/{'x' * 256}/preference-link")
    assert long.status_code == 422 and "user_id" in long.text
    # Tidings owns no users table: any user id has preferences, so no id is unknown.
    assert (await link_of(server, "nobody-yet")).startswith(server.settings.public_url)


# -- the page ---------------------------------------------------------------------------------

async def test_the_page_lists_received_types_and_rows_with_their_switches_in_english(
    server: RunningServer
) -> None:
    await create(server)
    await create(server, channel="news", type="digest")
    async with server.http("alice") as alice:
        await alice.put("/api/notifications/preferences", json={
            "channel": "orders", "notification_type": "*", "email_enabled": False})
    async with server.http() as anon:
        response = await anon.get(path_of(server, await link_of(server)))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert '<html lang="en">' in page and "Your notification preferences" in page
    assert 'href="../static/tidings.css"' in page
    for topic in ("billing/invoice", "news/digest", "orders/*"):
        assert f'name="topic" value="{topic}"' in page
    # Every switch has a label naming medium and type; all on but the orders email.
    assert '<label for="email-0" class="visually-hidden">Email for invoice</label>' in page
    fields = dict.fromkeys(name for name, _ in form_of(page))
    assert "email:orders/*" not in fields
    assert {"in_app:orders/*", "push:orders/*", "email:billing/invoice"} <= set(fields)
    assert 'id="quiet_start" name="quiet_start" value=""' in page


async def test_the_page_speaks_the_contacts_language_and_shows_quiet_hours(
    server: RunningServer
) -> None:
    await put_contact(server, "alice", locale="de-AT", quiet_hours={"start": "22:00",
                                                                    "end": "07:00"})
    await create(server)
    async with server.http() as anon:
        page = (await anon.get(path_of(server, await link_of(server)))).text
    assert '<html lang="de">' in page
    assert "Ihre Einstellungen für Benachrichtigungen" in page and "Ruhezeit" in page
    assert "E-Mail für invoice" in page and "Speichern" in page
    assert 'name="quiet_start" value="22:00"' in page and 'value="07:00"' in page


async def test_a_user_with_nothing_yet_gets_a_page_saying_so(server: RunningServer) -> None:
    async with server.http() as anon:
        response = await anon.get(path_of(server, await link_of(server, "newcomer")))
    assert response.status_code == 200
    assert "no notifications in the last 90 days" in response.text


async def test_catalogue_entries_name_the_lines_and_lock_required_types(
    server: RunningServer
) -> None:
    async def catalogue() -> Sequence[CatalogueEntry]:
        return [CatalogueEntry("billing", "invoice", {"en": "Invoices", "de": "Rechnungen"}),
                CatalogueEntry("security", "login", {"en": "Sign-ins"}, required=True)]

    api = server.services.api
    centre = PreferenceCentre(server.services.db, server.settings, api.preferences,
                              api.contacts, catalogue=catalogue)
    token = centre.link("alice").rsplit("/", 1)[1]
    await put_contact(server, "alice", locale="de")
    page = render_centre(api.messages, await centre.page(token), token).body.decode()
    assert "Rechnungen" in page and "Sign-ins" in page  # no German name: the English one
    assert "Erforderlich: wird immer gesendet" in page
    assert re.search(r'<input type="checkbox" id="email-1" name="email:security/login" '
                     r'value="on" checked disabled>', page)
    assert 'name="topic" value="security/login"' not in page
    # A hand-made form cannot opt out of a required type either.
    await centre.save(token, [("topic", "security/login"), ("topic", "billing/invoice"),
                              ("in_app:billing/invoice", "on")])
    assert await preferences(server) == {("billing", "invoice"): (True, False, False)}


async def test_the_page_lists_the_types_catalogue_in_the_contacts_language(
    server: RunningServer
) -> None:
    async with server.http("ops", "admin") as ops:
        for path, body in (
            ("billing/invoice", {"name": {"en": "Invoices", "de": "Rechnungen"}}),
            ("security/login", {"name": {"en": "Sign-ins", "de": "Anmeldungen"},
                                "required": True}),
        ):
            answer = await ops.put(f"/api/admin/types/{path}", json=body)
            assert answer.status_code == 200, answer.text
    await put_contact(server, "carla", locale="de")
    async with server.http() as anon:
        page = (await anon.get(path_of(server, await link_of(server, "carla")))).text
    assert "Rechnungen" in page and "Anmeldungen" in page
    assert re.search(r'name="email:security/login" value="on" checked disabled', page)


# -- the form -----------------------------------------------------------------------------------

async def test_posting_the_form_writes_only_what_changed_and_answers_303_to_the_page(
    server: RunningServer
) -> None:
    await create(server)
    await create(server, channel="news", type="digest")
    url = await link_of(server)
    async with server.http() as anon:
        page = (await anon.get(path_of(server, url))).text
        form = [(name, value) for name, value in form_of(page)
                if name != "email:billing/invoice"]
        response = await post_form(anon, path_of(server, url), form)
    assert response.status_code == 303
    assert response.headers["location"] == url
    # The untouched line writes no row: it keeps following the user's defaults.
    assert await preferences(server) == {("billing", "invoice"): (True, False, True)}


async def test_the_form_sets_and_clears_quiet_hours_as_the_contact_api_does(
    server: RunningServer
) -> None:
    path = path_of(server, await link_of(server))
    async with server.http() as anon:
        set_ = await anon.post(path, data={"quiet_start": "21:30", "quiet_end": "06:15"})
        async with server.http("accounts", "service") as http:
            contact = (await http.get("/api/users/alice/contact")).json()
        cleared = await anon.post(path, data={"quiet_start": "", "quiet_end": ""})
        async with server.http("accounts", "service") as http:
            after = (await http.get("/api/users/alice/contact")).json()
    assert (set_.status_code, cleared.status_code) == (303, 303)
    assert contact["quiet_hours"] == {"start": "21:30", "end": "06:15"}
    assert after["quiet_hours"] is None


@pytest.mark.parametrize("form", [
    {"quiet_start": "25:00", "quiet_end": "07:00"},
    {"quiet_start": "22:00", "quiet_end": ""},
    {"topic": "billing/in voice"},
    {"topic": "no-slash"},
    {"fax:billing/invoice": "on"},
])
async def test_a_form_the_page_never_sends_answers_422_and_changes_nothing(
    server: RunningServer, form: dict[str, str]
) -> None:
    await put_contact(server, "alice", locale="de")
    async with server.http() as anon:
        response = await anon.post(path_of(server, await link_of(server)),
                                   data={"topic": "billing/invoice", **form})
    assert response.status_code == 422
    assert "Nicht gespeichert" in response.text and 'role="alert"' in response.text
    assert await preferences(server) == {}


# -- refusals of the token ----------------------------------------------------------------------

def _flip(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def _respell(part: str) -> str:
    """The same bytes spelled another way: unused low bits set (refused as non-canonical)."""
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == part
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(part) % 4, 0)
    last = alphabet.index(part[-1])
    assert unused, "this part has no unused bits"
    return part[:-1] + alphabet[last | ((1 << unused) - 1)]


async def test_bad_tampered_and_non_canonical_tokens_answer_400_and_change_nothing(
    server: RunningServer
) -> None:
    good = (await link_of(server)).rsplit("/", 1)[1]
    payload, tag = good.split(".")
    unsubscribe = server.services.unsubscribe.token("alice", "billing", "invoice")
    bob = (await link_of(server, "bob")).rsplit("/", 1)[1]
    bad = [
        "x", "", ".", f"{payload}.", f"{payload}.{tag}.{tag}",
        f"{_flip(payload)}.{tag}", f"{payload}.{_flip(tag)}",  # tampered
        f"{payload}.{_respell(tag)}", f"{payload}={tag}", f"{payload}.{tag}=",
        f"{bob.split('.')[0]}.{tag}",  # another user's payload under alice's tag
        unsubscribe,  # another kind of link, signed with another key
        good[:-2],  # cut short
    ]
    async with server.http() as anon:
        for token in bad:
            got = await anon.get(f"/preferences/{token}")
            posted = await anon.post(f"/preferences/{token}",
                                     data={"topic": "billing/invoice", "quiet_start": ""})
            if token in ("", "."):  # not a token-shaped path at all
                # The client drops the `.`, and `/preferences` redirects to `/preferences/`:
                # the page of a bad link too, not the API's 404.
                got = await anon.get(f"/preferences/{token}", follow_redirects=True)
                assert got.status_code == 400, token
                assert "not valid" in got.text and "text/html" in got.headers["content-type"]
                continue
            assert (got.status_code, posted.status_code) == (400, 400), token
            assert "not valid" in got.text and "text/html" in got.headers["content-type"]
        assert (await anon.get(f"/preferences/{good}")).status_code == 200
    assert await preferences(server) == {}


# -- email: the footer, and the form turning email off --------------------------------------------

@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
async def mailer(database_url: str, smtp: tuple[ScriptedHandler, int]
                 ) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test")
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop()


async def email_status(server: RunningServer, note_id: str) -> str:
    """The email delivery's status once it has ended (polled: the worker settles in its
    own task, with no event a test can await over HTTP)."""
    async with server.http("alice") as http:
        for _ in range(250):
            body = (await http.get(f"/api/notifications/{note_id}")).json()
            status = next(d["status"] for d in body["deliveries"] if d["medium"] == "email")
            if status in ("sent", "dead", "skipped"):
                return str(status)
            await asyncio.sleep(0.02)
    raise AssertionError(f"the email delivery never ended: {body}")


async def test_every_email_links_the_centre_and_its_form_stops_the_next_email(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(mailer, "alice", email="alice@example.test", locale="de")
    first = await create(mailer, media=["in_app", "email"])
    assert await email_status(mailer, first["id"]) == "sent"
    (mail,) = handler.received
    url = await link_of(mailer)
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert f"Wählen Sie, was Sie erreicht: {url}" in text
    assert f'<a href="{url}"' in html  # the signed link itself, not a tracking redirect
    # The one-click unsubscribe header is still there, beside the footer.
    assert str(mail.message["List-Unsubscribe"]).strip().startswith(
        "<https://notify.example.test/unsubscribe/")

    local = path_of(mailer, url)
    async with mailer.http() as anon:
        page = (await anon.get(local)).text
        form = [(k, v) for k, v in form_of(page) if k != "email:billing/invoice"]
        assert (await post_form(anon, local, form)).status_code == 303
    second = await create(mailer)
    assert "email" not in [d["medium"] for d in second["deliveries"]]
    assert len(handler.received) == 1


async def test_a_digest_links_the_preference_centre(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await put_contact(mailer, "alice", email="alice@example.test")
    notes = [await create(mailer, type=f"t{n}", media=["email"],
                          digest={"key": "daily", "window_seconds": 1}) for n in range(2)]
    await email_status(mailer, notes[-1]["id"])
    (mail,) = handler.received
    text = mail.message.get_body(("plain",)).get_content()
    assert f"Choose what reaches you: {await link_of(mailer)}" in text
    assert mail.message["List-Unsubscribe"] is None  # two topics: no one-click
    async with httpx.AsyncClient(base_url=mailer.url) as anon:
        assert (await anon.get(path_of(mailer, await link_of(mailer)))).status_code == 200


async def test_the_unsubscribe_pages_speak_the_contacts_language_too(
    server: RunningServer
) -> None:
    await put_contact(server, "alice", locale="de")
    path = "/unsubscribe/" + server.services.unsubscribe.token("alice", "billing", "invoice")
    async with server.http() as anon:
        shown = await anon.get(path)
        done = await anon.post(path, data={"List-Unsubscribe": "One-Click"})
        english = await anon.get(
            "/unsubscribe/" + server.services.unsubscribe.token("bob", "billing", "invoice"))
    assert '<html lang="de">' in shown.text and "Abmelden</button>" in shown.text
    assert "Sie erhalten keine E-Mails mehr zu <strong>billing / invoice</strong>" in done.text
    assert '<html lang="en">' in english.text and "Unsubscribe</button>" in english.text
    assert 'href="../static/tidings.css"' in shown.text
