"""Creates that name a template: rendered at creation in each recipient's locale and zone
(from their contact), for one user, a list, a channel and concurrent creates written
together; failures answer 422 and store nothing; and end to end, a template with two
locales rendered into real emails received by a loopback SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tidings.config.settings import Settings
from tidings.domain.model import utcnow
from tidings.domain.template import Template
from tidings.store import subscriptions
from tidings.store import templates as template_store
from tidings.store.tables import notifications

ADMIN = ("ops", "admin")
SERVICE = ("billing", "service")
INVOICE = {
    "key": "invoice",
    "default_locale": "en",
    "variants": {
        "en": {
            "title": "Invoice {{ number }}",
            "message": "Total {{ total|currency('EUR') }}, due {{ due|datetime('d MMM HH:mm') }}",
            "subject": "Your invoice {{ number }}",
            "html": "<p>Invoice <b>{{ number }}</b> for {{ name }}</p>",
            "push_title": "Invoice",
            "push_body": "{{ number }} is ready",
        },
        "de": {
            "title": "Rechnung {{ number }}",
            "message": "Summe {{ total|currency('EUR') }}, "
                       "fällig {{ due|datetime('d MMM HH:mm') }}",
            "subject": "Ihre Rechnung {{ number }}",
            "text": "Hallo {{ name }}, Rechnung {{ number }}",
        },
    },
}
VARIABLES = {"number": "A-7", "total": 1234.5, "due": "2026-03-01T18:30:00Z", "name": "<Ada>"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, workers_in_serve=False)


async def add_template(server: RunningServer, body: dict[str, Any] = INVOICE) -> None:
    async with server.http(*ADMIN) as http:
        answer = await http.post("/api/admin/templates", json=body)
    assert answer.status_code == 201, answer.text


async def set_contact(server: RunningServer, user: str, **fields: Any) -> None:
    async with server.http("accounts", "service") as http:
        answer = await http.put(f"/api/users/{user}/contact", json=fields)
    assert answer.status_code == 200, answer.text


async def create(server: RunningServer, **fields: Any) -> Any:
    body = {"type": "invoice", "template": "invoice", "variables": VARIABLES, **fields}
    async with server.http(*SERVICE) as http:
        return await http.post("/api/notifications", json=body)


async def inbox(server: RunningServer, user: str) -> list[dict[str, Any]]:
    async with server.http(user) as http:
        return list((await http.get("/api/notifications")).json()["items"])


async def stored_rows(server: RunningServer) -> list[Any]:
    async with server.services.db.begin() as conn:
        return list(await conn.execute(sa.select(notifications)))


async def test_one_user_gets_the_variant_of_their_locale_in_their_zone(
    server: RunningServer,
) -> None:
    await add_template(server)
    await set_contact(server, "alice", locale="de-AT", timezone="Europe/Vienna")
    answer = await create(server, user_id="alice")
    assert answer.status_code == 201, answer.text
    note = answer.json()
    assert note["template"] == {"key": "invoice", "version": 1, "locale": "de"}
    assert note["title"] == "Rechnung A-7"
    # Austrian German puts the euro sign first.
    assert note["message"] == "Summe €\xa01.234,50, fällig 1 März 19:30"
    rows = await stored_rows(server)
    assert rows[0].content == {"subject": "Ihre Rechnung A-7",
                               "text": "Hallo <Ada>, Rechnung A-7",
                               "html": "<p>Invoice <b>A-7</b> for &lt;Ada&gt;</p>",
                               "push_title": "Invoice", "push_body": "A-7 is ready"}


async def test_each_of_several_users_gets_their_own_locale_and_the_default_without_one(
    server: RunningServer,
) -> None:
    await add_template(server)
    await set_contact(server, "alice", locale="de_DE")
    await set_contact(server, "carol", locale="fr")
    answer = await create(server, user_ids=["alice", "bob", "carol"])
    assert answer.status_code == 202, answer.text
    titles = {user: (await inbox(server, user))[0] for user in ("alice", "bob", "carol")}
    assert titles["alice"]["title"] == "Rechnung A-7"
    assert titles["alice"]["template"]["locale"] == "de"
    assert titles["bob"]["title"] == "Invoice A-7"
    assert titles["bob"]["message"] == "Total €1,234.50, due 1 Mar 18:30"
    assert titles["carol"]["template"] == {"key": "invoice", "version": 1, "locale": "en"}


async def test_a_channels_subscribers_are_rendered_one_by_one_locale(
    server: RunningServer,
) -> None:
    await add_template(server)
    await set_contact(server, "dora", locale="de")
    async with server.services.db.begin() as conn:
        await subscriptions.add(conn, [("dora", "billing"), ("emil", "billing")], utcnow())
    answer = await create(server, channel="billing")
    assert answer.status_code == 202 and answer.json()["count"] == 2
    assert (await inbox(server, "dora"))[0]["title"] == "Rechnung A-7"
    assert (await inbox(server, "emil"))[0]["title"] == "Invoice A-7"


async def test_concurrent_creates_written_together_each_render_their_own(
    server: RunningServer,
) -> None:
    await add_template(server)
    await set_contact(server, "alice", locale="de")
    answers = await asyncio.gather(*(
        create(server, user_id=user, variables={**VARIABLES, "number": f"N{i}"})
        for i, user in enumerate(["alice", "bob"] * 10)
    ))
    assert all(answer.status_code == 201 for answer in answers)
    for i, answer in enumerate(answers):
        expected = ("Rechnung" if i % 2 == 0 else "Invoice") + f" N{i}"
        assert answer.json()["title"] == expected


async def test_a_missing_variable_of_one_recipients_variant_fails_the_whole_request(
    server: RunningServer,
) -> None:
    await add_template(server)
    await set_contact(server, "alice", locale="de")
    # Only the German variant's text uses `name`.
    variables = {key: value for key, value in VARIABLES.items() if key != "name"}
    alone = await create(server, user_id="bob", variables=variables, media=["in_app"])
    assert alone.status_code == 422
    assert alone.json()["error"]["field"] == "variables.name"  # the English html uses it
    await add_template(server, {"key": "short", "variants": {
        "en": {"title": "{{ number }}", "message": "m"},
        "de": {"title": "{{ number }} {{ city }}", "message": "m"}}})
    ok = await create(server, template="short", user_ids=["bob"], variables=variables)
    assert ok.status_code == 202
    failed = await create(server, template="short", user_ids=["bob", "alice"],
                          variables=variables)
    assert failed.status_code == 422, failed.text
    assert failed.json()["error"]["field"] == "variables.city"
    assert len(await stored_rows(server)) == 1


async def test_unknown_templates_and_mixed_bodies_are_422_naming_the_field(
    server: RunningServer,
) -> None:
    await add_template(server)
    cases = [
        ({"template": "nope"}, "template"),
        ({"title": "also"}, "template"),
        ({"message": "also"}, "template"),
        ({"template": None, "variables": None, "message": "m"}, "title"),
        ({"template": None, "variables": None, "title": "t"}, "message"),
        ({"html": "x" * (100 * 1024 + 1), "template": None, "variables": None,
          "title": "t", "message": "m"}, "html"),
    ]
    for fields, field in cases:
        answer = await create(server, user_id="bob", **fields)
        assert answer.status_code == 422, (fields, answer.text)
        assert answer.json()["error"]["field"] == field
    assert await stored_rows(server) == []


async def test_a_render_error_at_creation_names_the_part(server: RunningServer) -> None:
    await add_template(server, {"key": "peek", "variants": {"en": {
        "title": "{{ number.__class__ }}", "message": "m"}}})
    answer = await create(server, template="peek", user_id="bob")
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "variants.en.title"


async def test_creates_use_the_latest_version_and_keep_their_text_after_delete(
    server: RunningServer,
) -> None:
    await add_template(server)
    async with server.http(*ADMIN) as http:
        await http.put("/api/admin/templates/invoice", json={
            **INVOICE, "variants": {"en": {"title": "v2 {{ number }}", "message": "m"}}})
    note = (await create(server, user_id="bob")).json()
    assert note["template"]["version"] == 2 and note["title"] == "v2 A-7"
    async with server.http(*ADMIN) as http:
        assert (await http.delete("/api/admin/templates/invoice")).status_code == 204
    async with server.http("bob") as http:
        kept = (await http.get(f"/api/notifications/{note['id']}")).json()
    assert kept["title"] == "v2 A-7" and kept["template"]["version"] == 2
    assert (await create(server, user_id="bob")).status_code == 422


# -- end to end: real emails -----------------------------------------------------------------

@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler(expected=2)
    async with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
async def mailer(database_url: str, smtp: tuple[ScriptedHandler, int]
                 ) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test",
    )
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop()


async def test_a_template_with_two_locales_arrives_as_two_real_emails(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await add_template(mailer)
    await set_contact(mailer, "alice", email="alice@example.test", locale="de_AT",
                      timezone="Europe/Berlin")
    await set_contact(mailer, "bob", email="bob@example.test", locale="en_GB")
    answer = await create(mailer, user_ids=["alice", "bob"], media=["email"])
    assert answer.status_code == 202, answer.text
    await asyncio.wait_for(handler.arrived.wait(), 10)
    mails = {r.rcpt_tos[0]: r.message for r in handler.received}
    german, english = mails["alice@example.test"], mails["bob@example.test"]
    assert german["Subject"] == "Ihre Rechnung A-7"
    # The rendered text, then the footer linking the preference centre (in German too).
    german_text = german.get_body(("plain",)).get_content()
    assert german_text.startswith("Hallo <Ada>, Rechnung A-7\n")
    assert "Wählen Sie, was Sie erreicht: https://" in german_text
    # The German variant gives no html: the default (English) variant's, escaped.
    assert "<b>A-7</b> for &lt;Ada&gt;" in german.get_body(("html",)).get_content()
    assert english["Subject"] == "Your invoice A-7"
    # No text part in the English variant: the rules give the message.
    assert english.get_body(("plain",)).get_content().startswith(
        "Total €1,234.50, due 1 Mar 18:30\n")


async def test_the_producers_own_html_is_cleaned_and_sent(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.expected = 1
    await set_contact(mailer, "bob", email="bob@example.test")
    async with mailer.http(*SERVICE) as http:
        answer = await http.post("/api/notifications", json={
            "type": "invoice", "title": "Hi", "message": "plain", "user_id": "bob",
            "media": ["email"],
            "html": "<p onclick='x()'>Hi <b>there</b><script>alert(1)</script></p>"})
    assert answer.status_code == 201, answer.text
    await asyncio.wait_for(handler.arrived.wait(), 10)
    html = handler.received[0].message.get_body(("html",)).get_content()
    assert "<b>there</b>" in html and "script" not in html and "onclick" not in html


async def test_an_exact_regional_variant_wins_over_its_language(server: RunningServer) -> None:
    await add_template(server, {"key": "greet", "default_locale": "en", "variants": {
        "en": {"title": "Hello", "message": "m"}, "de": {"title": "Hallo"},
        "de_AT": {"title": "Servus"}}})
    await set_contact(server, "alice", locale="de_AT")
    await set_contact(server, "bob", locale="de_CH")
    await set_contact(server, "carol", locale="it")
    answer = await create(server, template="greet", user_ids=["alice", "bob", "carol"])
    assert answer.status_code == 202
    seen = {user: (await inbox(server, user))[0] for user in ("alice", "bob", "carol")}
    assert [(n["title"], n["message"], n["template"]["locale"]) for n in seen.values()] == [
        ("Servus", "m", "de_AT"), ("Hallo", "m", "de"), ("Hello", "m", "en")]


async def test_the_size_and_time_bounds_hold_at_creation(server: RunningServer) -> None:
    await add_template(server, {"key": "huge", "variants": {"en": {
        "title": "t", "push_body": "{% for i in range(2000) %}{{ filler }}{% endfor %}",
        "message": "m"}}})
    await add_template(server, {"key": "slow", "variants": {"en": {
        "title": "{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}"
                 "{% endfor %}", "message": "m"}}})
    huge = await create(server, template="huge", user_id="bob", variables={"filler": "x" * 99})
    assert huge.status_code == 422 and huge.json()["error"]["field"] == "variants.en.push_body"
    assert "longer than 102400" in huge.json()["error"]["message"]
    slow = await create(server, template="slow", user_id="bob", variables={})
    assert slow.status_code == 422 and slow.json()["error"]["field"] == "variants.en.title"
    assert await stored_rows(server) == []


async def test_a_runaway_template_fails_its_create_while_the_server_keeps_answering(
    server: RunningServer,
) -> None:
    await add_template(server, {"key": "walk", "variants": {"en": {
        "title": "{% set l = range(10000)|list %}{{ ([l] * 10000)|tojson }}",
        "message": "m"}}})
    async with server.http() as anonymous:
        made, health = await asyncio.gather(
            create(server, template="walk", user_ids=["alice", "bob"], variables={}),
            anonymous.get("/health"))
    assert made.status_code == 422, made.text
    assert made.json()["error"]["field"] == "variants.en.title"
    assert "rendering stopped" in made.json()["error"]["message"]
    assert "took longer" not in made.json()["error"]["message"]
    assert health.status_code == 200
    assert await stored_rows(server) == []


async def test_a_stored_template_nested_too_deeply_fails_its_create(
    server: RunningServer,
) -> None:
    # Stored without the checks of a save, as a version saved before them was.
    deep = "{% for a in x %}" * 21 + "{% endfor %}" * 21
    template = Template("deep", 1, "en", {"en": {"title": deep, "message": "m"}}, "ops",
                        utcnow())
    async with server.services.db.begin() as conn:
        await template_store.insert(conn, template)
    answer = await create(server, template="deep", user_id="bob", variables={"x": []})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "variants.en.title"
    assert "nested too deeply" in answer.json()["error"]["message"]
    assert await stored_rows(server) == []
