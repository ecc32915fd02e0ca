"""Admin HTTP API for templates: create, versions, read, list, delete and preview, on SQLite
and PostgreSQL, with real rendering."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tidings.config.settings import Settings
from tidings.domain.model import utcnow
from tidings.domain.template import MAX_SOURCE_BYTES, Template
from tidings.store import templates as store

pytestmark = pytest.mark.both_databases

ADMIN = ("ops", "admin")
WELCOME = {
    "key": "welcome",
    "default_locale": "en",
    "variants": {
        "en": {"title": "Welcome {{ name }}", "message": "Hello {{ name }}",
               "html": "<p>Hello <b>{{ name }}</b></p>"},
        "de": {"title": "Willkommen {{ name }}", "message": "Hallo {{ name }}"},
    },
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, workers_in_serve=False)


# Nested past what Jinja2's parser (recursion) and Python's compiler (20 nested blocks)
# take: these were 500s.
NESTED = ["{{ " + "(" * 70 + "1" + ")" * 70 + " }}",
          "{% for a in x %}" * 21 + "{% endfor %}" * 21]
# Short lists that hold a list of 10,000 numbers thousands of times: one step each, that
# walked all of it with the GIL held (seconds, and hundreds of MB).
LISTS = "{% set l = range(10000)|list %}{% set m = range(10000)|list %}"
RUNAWAYS = [LISTS + "{{ ([l] * 10000)|string }}", LISTS + "{{ ([l] * 10000)|tojson }}",
            LISTS + "{{ ([l] * 10000) == ([m] * 10000) }}", LISTS + "{{ m in [l] * 10000 }}",
            "{{ range(10000)|map('center', 100000)|list|length }}"]

# Within the 64 KB of a part, 28,000 tokens whose Python code took seconds to compile in
# one call that holds the GIL, stalling the whole server on each save and first render.
SLOW_TO_COMPILE = "{{ a~a~a~a~a~a~a~a~a~a }}" * 2600


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/api/admin/templates", json=body)


async def store_unchecked(server: RunningServer, key: str, message: str) -> None:
    """Store a version without the checks of a save (as one saved before them was)."""
    template = Template(key, 1, "en", {"en": {"title": "t", "message": message}}, "ops",
                        utcnow())
    async with server.services.db.begin() as conn:
        await store.insert(conn, template)


async def test_create_answers_version_1_and_a_second_create_of_the_key_409(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http:
        created = await post(http, WELCOME)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["key"] == "welcome" and body["version"] == 1
        assert body["locales"] == ["de", "en"] and body["default_locale"] == "en"
        assert body["variants"]["de"]["title"] == "Willkommen {{ name }}"
        again = await post(http, WELCOME)
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "key"


async def test_only_admins_manage_templates(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        assert (await post(http, WELCOME)).status_code == 403
        assert (await http.get("/api/admin/templates")).status_code == 403
        assert (await http.delete("/api/admin/templates/welcome")).status_code == 403
    async with server.http() as anonymous:
        assert (await anonymous.get("/api/admin/templates")).status_code == 401


async def test_put_makes_a_new_version_and_old_versions_stay_readable(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        changed = {**WELCOME, "variants": {"en": {"title": "Hi {{ name }}", "message": "v2"}}}
        second = await http.put("/api/admin/templates/welcome", json=changed)
        assert second.status_code == 200, second.text
        assert second.json()["version"] == 2 and second.json()["locales"] == ["en"]
        third = await http.put("/api/admin/templates/welcome", json=changed)
        assert third.json()["version"] == 3
        latest = (await http.get("/api/admin/templates/welcome")).json()
        assert latest["version"] == 3
        first = (await http.get("/api/admin/templates/welcome", params={"version": 1})).json()
        assert first["version"] == 1 and first["variants"]["de"]["message"] == "Hallo {{ name }}"
        missing = await http.get("/api/admin/templates/welcome", params={"version": 9})
        assert missing.status_code == 404


async def test_put_refuses_another_key_and_unknown_keys(server: RunningServer) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        other = await http.put("/api/admin/templates/welcome", json={**WELCOME, "key": "x"})
        assert other.status_code == 422 and other.json()["error"]["field"] == "key"
        unknown = await http.put("/api/admin/templates/nope", json={**WELCOME, "key": "nope"})
        assert unknown.status_code == 404


async def test_a_syntax_error_names_the_variant_part_and_line(server: RunningServer) -> None:
    broken = {**WELCOME, "variants": {
        "en": {"title": "ok", "message": "line one\n{{ name "}}}
    async with server.http(*ADMIN) as http:
        answer = await post(http, broken)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["field"] == "variants.en.message" and "line 2" in error["message"]
        assert (await http.get("/api/admin/templates/welcome")).status_code == 404


async def test_bad_bodies_are_422_naming_the_field(server: RunningServer) -> None:
    big = "x" * (64 * 1024 + 1)
    cases = [
        ({**WELCOME, "key": "bad key"}, "key"),
        ({**WELCOME, "variants": {}}, "variants"),
        ({**WELCOME, "variants": {"en": {"title": "a", "message": big}}}, None),
        ({**WELCOME, "variants": {"en": {"title": "a", "mesage": "b"}}}, "variants.en.mesage"),
        ({**WELCOME, "default_locale": "fr"}, "default_locale"),
        ({**WELCOME, "variants": {"klingon!": {"title": "a", "message": "b"}}},
         "variants.klingon!"),
    ]
    async with server.http(*ADMIN) as http:
        for body, field in cases:
            answer = await post(http, body)
            assert answer.status_code == 422, (body, answer.text)
            if field is not None:
                assert answer.json()["error"]["field"] == field


async def test_the_list_shows_latest_versions_page_by_page(server: RunningServer) -> None:
    async with server.http(*ADMIN) as http:
        for key in ("c", "a", "b"):
            await post(http, {**WELCOME, "key": key})
        await http.put("/api/admin/templates/a", json={**WELCOME, "key": "a"})
        first = (await http.get("/api/admin/templates", params={"limit": 2})).json()
        assert [(i["key"], i["version"]) for i in first["items"]] == [("a", 2), ("b", 1)]
        assert set(first["items"][0]) == {"key", "version", "default_locale", "locales",
                                          "updated_at"}
        rest = (await http.get("/api/admin/templates",
                               params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert [i["key"] for i in rest["items"]] == ["c"] and rest["next_cursor"] is None
        bad = await http.get("/api/admin/templates", params={"cursor": "!!"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"


async def test_delete_removes_every_version_and_frees_the_key(server: RunningServer) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        await http.put("/api/admin/templates/welcome", json=WELCOME)
        assert (await http.delete("/api/admin/templates/welcome")).status_code == 204
        assert (await http.get("/api/admin/templates/welcome")).status_code == 404
        gone = await http.get("/api/admin/templates/welcome", params={"version": 2})
        assert gone.status_code == 404
        assert (await http.delete("/api/admin/templates/welcome")).status_code == 404
        again = await post(http, WELCOME)
        assert again.status_code == 201 and again.json()["version"] == 1


async def test_preview_renders_every_part_with_the_rules_filling_the_rest(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        answer = await http.post("/api/admin/templates/welcome/preview",
                                 json={"variables": {"name": "<Ada>"}, "locale": "de-AT"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["locale"] == "de" and body["version"] == 1
        # The German variant has no html: the default locale's variant gives it, escaped.
        assert body["parts"] == {
            "title": "Willkommen <Ada>", "message": "Hallo <Ada>",
            "subject": "Willkommen <Ada>", "text": "Hallo <Ada>",
            "html": "<p>Hello <b>&lt;Ada&gt;</b></p>",
            "push_title": "Willkommen <Ada>", "push_body": "Hallo <Ada>",
            "sms": "Willkommen <Ada>: Hallo <Ada>",
        }
        english = (await http.post("/api/admin/templates/welcome/preview",
                                   json={"variables": {"name": "Bo"}})).json()
        assert english["locale"] == "en" and english["parts"]["title"] == "Welcome Bo"


async def test_preview_takes_a_version_and_names_a_missing_variable(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        await http.put("/api/admin/templates/welcome", json={
            **WELCOME, "variants": {"en": {"title": "v2 {{ other }}", "message": "m"}}})
        old = await http.post("/api/admin/templates/welcome/preview", params={"version": 1},
                              json={"variables": {"name": "Bo"}})
        assert old.status_code == 200 and old.json()["version"] == 1
        missing = await http.post("/api/admin/templates/welcome/preview",
                                  json={"variables": {"name": "Bo"}})
        assert missing.status_code == 422
        assert missing.json()["error"]["field"] == "variables.other"
        unknown = await http.post("/api/admin/templates/nope/preview", json={"variables": {}})
        assert unknown.status_code == 404
        locale = await http.post("/api/admin/templates/welcome/preview",
                                 json={"variables": {}, "locale": "no such"})
        assert locale.status_code == 422 and locale.json()["error"]["field"] == "locale"


async def test_preview_stops_a_runaway_template_and_refuses_internals(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, {"key": "loop", "variants": {"en": {
            "title": "t", "message": "{% for a in range(9999) %}{% for b in range(9999) %}"
                                     "{{ a }}{% endfor %}{% endfor %}"}}})
        await post(http, {"key": "peek", "variants": {"en": {
            "title": "t", "message": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}})
        for key in ("loop", "peek"):
            answer = await http.post(f"/api/admin/templates/{key}/preview",
                                     json={"variables": {}})
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["field"] == "variants.en.message"


async def test_concurrent_puts_each_make_their_own_version(server: RunningServer) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        answers = await asyncio.gather(*(
            http.put("/api/admin/templates/welcome", json=WELCOME) for _ in range(5)))
    assert sorted(answer.json()["version"] for answer in answers) == [2, 3, 4, 5, 6]


async def test_sources_nested_past_the_compilers_limits_are_422_on_create_and_put(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http:
        await post(http, WELCOME)
        for source in NESTED:
            created = await post(http, {"key": "deep", "variants": {"en": {
                "title": "t", "message": source}}})
            replaced = await http.put("/api/admin/templates/welcome", json={
                **WELCOME, "variants": {"en": {"title": source, "message": "m"}}})
            for answer, field in ((created, "variants.en.message"),
                                  (replaced, "variants.en.title")):
                assert answer.status_code == 422, answer.text
                assert answer.json()["error"]["field"] == field
                assert "nested too deeply" in answer.json()["error"]["message"]
        assert (await http.get("/api/admin/templates/deep")).status_code == 404
        assert (await http.get("/api/admin/templates/welcome")).json()["version"] == 1


async def test_a_stored_version_nested_too_deeply_previews_as_a_422(
    server: RunningServer,
) -> None:
    for number, source in enumerate(NESTED):
        await store_unchecked(server, f"deep{number}", source)
        async with server.http(*ADMIN) as http:
            answer = await http.post(f"/api/admin/templates/deep{number}/preview",
                                     json={"variables": {"x": []}})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "variants.en.message"
        assert "nested too deeply" in answer.json()["error"]["message"]


async def test_a_part_too_long_to_compile_is_422_on_save_and_on_preview(
    server: RunningServer,
) -> None:
    assert len(SLOW_TO_COMPILE.encode()) <= MAX_SOURCE_BYTES
    await store_unchecked(server, "stored", SLOW_TO_COMPILE)
    async with server.http(*ADMIN) as http, server.http() as anonymous:
        await post(http, WELCOME)
        answers = await asyncio.gather(
            post(http, {"key": "long", "variants": {"en": {
                "title": "t", "message": SLOW_TO_COMPILE}}}),
            http.put("/api/admin/templates/welcome", json={
                **WELCOME, "variants": {"en": {"title": "t", "message": "m",
                                               "html": SLOW_TO_COMPILE}}}),
            http.post("/api/admin/templates/stored/preview", json={"variables": {"a": 1}}),
            anonymous.get("/health"))
        for answer, field in zip(answers[:3], ("variants.en.message", "variants.en.html",
                                               "variants.en.message"), strict=True):
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["field"] == field
            assert "too long to compile" in answer.json()["error"]["message"]
        assert answers[3].status_code == 200
        assert (await http.get("/api/admin/templates/long")).status_code == 404
        assert (await http.get("/api/admin/templates/welcome")).json()["version"] == 1


async def test_runaway_previews_are_refused_while_the_server_keeps_answering(
    server: RunningServer,
) -> None:
    async with server.http(*ADMIN) as http, server.http() as anonymous:
        for number, source in enumerate(RUNAWAYS):
            created = await post(http, {"key": f"runaway{number}", "variants": {"en": {
                "title": "t", "message": source}}})
            assert created.status_code == 201, created.text
        answers = await asyncio.gather(
            *(http.post(f"/api/admin/templates/runaway{number}/preview",
                        json={"variables": {}}) for number in range(len(RUNAWAYS))),
            *(anonymous.get("/health") for _ in range(5)))
    previews, health = answers[:len(RUNAWAYS)], answers[len(RUNAWAYS):]
    for answer in previews:
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "variants.en.message"
        # Refused for what it would build, before building it.
        assert "rendering stopped" in error["message"], error
        assert "took longer" not in error["message"], error
    assert [answer.status_code for answer in health] == [200] * 5
