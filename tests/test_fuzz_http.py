"""Property-based fuzzing of the HTTP API from the OpenAPI document it publishes.

Schemathesis runs every phase it has (examples, coverage, fuzzing, stateful) with every
check it has (`checks.enabled`: server errors, status codes, content types, headers and
bodies as documented, invalid requests refused, valid ones accepted, unsupported methods
answered 405 with `Allow`, missing headers, ignored authentication, resources that vanish
or outlive their deletion...) against a real server on SQLite and on PostgreSQL, once as an
`admin` and once as a plain user. It must find nothing: the
document says exactly what the server enforces (DESIGN.md section 5: bad input is a 4xx
naming the field, never a 5xx).

A few rules cannot be said in JSON Schema, because they depend on stored state or on
another part of the request; `_steer` keeps *valid* generated requests within them (and
says why, rule by rule), so that the checks stay whole. Invalid requests are never touched.

Bounded and reproducible: `EXAMPLES` per operation and phase (`TIDINGS_FUZZ_EXAMPLES`,
default 5), derandomized generation.
"""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
from schemathesis.schemas import BaseSchema

from tests.conftest import RunningServer, make_settings
from tests.threaded_server import server_in_thread
from tidings.domain.locales import (
    LOCALE_SCHEMA,
    ZONE_SCHEMA,
    locale_tags,
    normalize_locale,
    zone_names,
)

pytestmark = pytest.mark.both_databases

# The one place that sets how much is generated (`scripts/test.sh --all` asks for more).
EXAMPLES = int(os.environ.get("TIDINGS_FUZZ_EXAMPLES", "5"))
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# An admin reaches every operation (a `service` producer creates as an admin does, and
# meets the same 403 on admin routes as a user); a plain user meets the 403s and owns data.
CALLERS = {"admin": ("fuzz-ops", "admin"), "user": ("fuzz-alice",)}
TEMPLATE = "fuzz-greeting"  # the one template a generated create may name
# A browser's key: a point on P-256, which no pattern can describe.
BROWSER_KEY = base64.urlsafe_b64encode(
    ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)).decode().rstrip("=")


def _sampled(spec: dict[str, Any]) -> dict[str, Any]:
    """The document with a sample of its locales and zones: the coverage phase sends every
    value of an enum (thousands here; `tests/unit/test_locales.py` checks them all)."""
    schemas = spec["components"]["schemas"]
    locales = [tag for name in ("en", "de_AT", "pt_BR", "zh_Hans_CN", "sr_Latn_RS")
               for tag in sorted(locale_tags())
               if tag in (name, name.lower(), name.replace("_", "-"),
                          name.replace("_", "-").lower())]
    zones = ["UTC", "Europe/Vienna", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]
    assert set(locales) <= set(schemas[LOCALE_SCHEMA]["enum"]) and len(locales) == 17
    assert set(zones) <= set(schemas[ZONE_SCHEMA]["enum"]) <= zone_names()
    schemas[LOCALE_SCHEMA]["enum"] = locales
    schemas[ZONE_SCHEMA]["enum"] = zones
    return spec


def _config(url: str, token: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "base-url": url,
        "headers": {"Authorization": f"Bearer {token}"},
        "workers": 1,
        "checks": {"enabled": True},
        "phases": {phase: {"enabled": True} for phase in PHASES},
        "generation": {
            "max-examples": EXAMPLES, "deterministic": True, "database": "none",
            # Text never holds NUL or a lone surrogate (PostgreSQL and UTF-8 cannot keep
            # them; the document's description says so): generate neither.
            "allow-x00": False, "codec": "utf-8",
        },
        "suppress-health-check": ["all"],
        "continue-on-failure": True,
        "request-timeout": 10,
    })


def _steer(schema: BaseSchema) -> None:
    """Keep valid generated requests within the rules the document cannot state."""

    @schema.hook("map_case")
    def within_state(_context: Any, case: schemathesis.Case) -> schemathesis.Case:
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return case
        if case.headers and "Idempotency-Key" in case.headers:
            # A key names one request: the same key with another body is a 422.
            case.headers["Idempotency-Key"] = uuid.uuid4().hex
        body = case.body
        label = f"{case.method} {case.operation.path}"
        if label in ("POST /api/notifications", "POST /api/notifications/batch"):
            items = body.get("items") if isinstance(body, dict) else None
            for draft in (items if isinstance(items, list) else [body]):
                if isinstance(draft, dict) and isinstance(draft.get("template"), str):
                    # Only a stored template can be named (else 422, field `template`).
                    draft["template"] = TEMPLATE
                if isinstance(draft, dict) and isinstance(draft.get("expires_at"), str):
                    # Judged against the clock: in the future, after `scheduled_at`.
                    draft["expires_at"] = "2999-01-01T00:00:00Z"
        elif label in ("POST /api/admin/templates", "PUT /api/admin/templates/{key}"):
            if isinstance(body, dict):
                _renderable(body)
        elif label == "PUT /api/admin/types/{channel}/{type}" and isinstance(body, dict):
            # Two spellings of one locale are a 422 naming the second.
            for texts in (body.get("name"), body.get("description")):
                if isinstance(texts, dict):
                    _one_spelling_each(texts)
        elif label == "PUT /api/channels/{channel}/subscribers" and isinstance(body, dict):
            _within_one_change(body)
        elif label == "PUT /api/users/{user_id}/contact" and isinstance(body, dict):
            if isinstance(body.get("phone"), str):
                # A number `phonenumbers` judges valid: the rest of the rule has no schema.
                body["phone"] = "+41 44 668 18 00"
        elif label == "POST /api/devices" and isinstance(body, dict):
            keys = (body.get("subscription") or {}).get("keys")
            if isinstance(keys, dict):
                keys["p256dh"] = BROWSER_KEY
        return case


def _within_one_change(body: dict[str, Any]) -> None:
    """A topic change the server accepts: no id both added and removed, at most 10,000 in
    all (each list alone may hold 10,000), and at least one left (else 422)."""
    add = body.get("add") if isinstance(body.get("add"), list) else []
    remove = body.get("remove") if isinstance(body.get("remove"), list) else []
    if "remove" in body and isinstance(remove, list):
        body["remove"] = remove = [i for i in remove if i not in set(add)][
            :max(0, 10_000 - len(add))]
    if not add and not remove:
        body["add"] = ["fuzz-topic-user"]


class _Ids:
    """Notification ids in valid requests: random ones are all unknown (404), so each names
    the caller's own notification instead (its answers with a body, and for DELETE its 204
    and then 404s), unless it is one a create of this run answered (a stateful link from
    the create to its GET, DELETE...), which stays as it is."""

    own = ""
    created: set[str] = set()


def _same_key(_context: Any, case: schemathesis.Case, _kwargs: Any) -> None:
    """Set when the path is final (the coverage phase varies it after `map_case`); Schemathesis
    takes this hook globally only, so the test registers it for its run alone.
    - The body's key of a template PUT must be the path's (else 422, field `key`).
    - A valid request's notification id is one this caller owns (`_Ids`)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    params = case.path_parameters or {}
    if (case.method == "PUT" and case.operation.path == "/api/admin/templates/{key}"
            and isinstance(case.body, dict) and params):
        case.body["key"] = params["key"]
    if "notification_id" in params and params["notification_id"] not in _Ids.created:
        params["notification_id"] = _Ids.own


def _remember_created(_context: Any, case: schemathesis.Case, response: Any) -> None:
    if (case.method == "POST" and case.operation.path == "/api/notifications"
            and response.status_code == 201):
        _Ids.created.add(str(response.json()["id"]))


@contextlib.contextmanager
def _hook_before_call() -> Iterator[None]:
    schemathesis.hook("before_call")(_same_key)
    schemathesis.hook("after_call")(_remember_created)
    try:
        yield
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(_same_key)
        GLOBAL_HOOK_DISPATCHER.unregister(_remember_created)
        _Ids.created.clear()


def _one_spelling_each(texts: dict[str, Any]) -> None:
    """Keep the first spelling of each locale (`en`, `EN`: one locale, given twice)."""
    seen: set[str] = set()
    for locale in list(texts):
        normal = normalize_locale(locale)
        if normal in seen:
            del texts[locale]
        seen.add(normal)


def _renderable(draft: dict[str, Any]) -> None:
    """A template draft the server can compile: one variant per locale (two spellings of one
    locale are a 422), the default's variant with a title and a message, and parts without
    Jinja2 delimiters (a syntax error is a 422 naming the part)."""
    variants: dict[str, Any] = {}
    for locale, parts in draft.get("variants", {}).items():
        if normalize_locale(locale) not in {normalize_locale(v) for v in variants}:
            variants[locale] = {part: text.replace("{", "(") if isinstance(text, str)
                                else text for part, text in parts.items()}
    draft["variants"] = variants
    default = draft.get("default_locale")
    if default is None or normalize_locale(default) not in {
            normalize_locale(v) for v in variants}:
        draft.pop("default_locale", None)
        default = next(iter(variants))
    chosen = next(v for v in variants if normalize_locale(v) == normalize_locale(default))
    variants[chosen].update(title=variants[chosen].get("title") or "Hello",
                            message=variants[chosen].get("message") or "")


def _failures(schema: BaseSchema) -> Iterator[str]:
    """Each kind of failure once, with a curl command that replays it."""
    seen: set[tuple[str, str]] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError | events.NonFatalError):
            yield f"error: {event}"
        if not isinstance(event, events.ScenarioFinished):
            continue
        recorder = event.recorder
        for case_id, checks in recorder.checks.items():
            for check in checks:
                info = check.failure_info
                if check.status != Status.FAILURE or info is None:
                    continue
                key = (recorder.cases[case_id].value.operation.label, check.name)
                if key not in seen:
                    seen.add(key)
                    interaction = recorder.interactions.get(case_id)
                    answer = interaction.response if interaction else None
                    yield (f"{key[0]} ({event.phase.value}): {info.failure.title}\n"
                           f"{info.failure.message}\n{info.code_sample}\n"
                           + (f"answered {answer.status_code}: {answer.content[:500]!r}"
                              if answer else ""))


def _prepare(server: RunningServer) -> None:
    """What `_steer` counts on: the one template a create may name."""
    answer = requests.post(f"{server.url}/api/admin/templates", timeout=10,
                           headers=_as(server, CALLERS["admin"]),
                           json={"key": TEMPLATE, "variants": {"en": {
                               "title": "Hello", "message": "From the fuzzer"}}})
    assert answer.status_code == 201, answer.text


def _as(server: RunningServer, caller: tuple[str, ...]) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(*caller)}"}


def _own_notification(server: RunningServer, user_id: str) -> str:
    answer = requests.post(f"{server.url}/api/notifications", timeout=10,
                           headers=_as(server, CALLERS["admin"]),
                           json={"user_id": user_id, "type": "fuzz", "title": "Fuzzed",
                                 "message": "A notification of the caller's own"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


# About a minute per database: CI's tier (`-m fuzz` runs it by hand); more examples take
# far longer (the stateful phase follows every create it makes).
@pytest.mark.fuzz
@pytest.mark.timeout(900)
def test_schemathesis_finds_nothing_with_every_check(database_url: str) -> None:
    # Targets on any address (no DNS: a pattern says what the server judges), and no
    # delivery workers (the webhooks and devices registered go nowhere).
    settings = make_settings(database_url, allow_private_targets=True,
                             workers_in_serve=False)
    with server_in_thread(settings) as server, _hook_before_call():
        _prepare(server)
        spec = _sampled(requests.get(f"{server.url}/openapi.json", timeout=10).json())
        assert len(spec["paths"]) >= 8, "the OpenAPI document lost its operations"
        found: list[str] = []
        for caller in CALLERS.values():
            own = _Ids.own = _own_notification(server, caller[0])
            schema = schemathesis.openapi.from_dict(
                spec, config=_config(server.url, server.token(*caller)))
            _steer(schema)
            found += [f"as {caller[0]}: {failure}" for failure in _failures(schema)]
            # The pinned id was reached: its DELETE answered 204, and it is gone.
            gone = requests.get(f"{server.url}/api/notifications/{own}", timeout=10,
                                headers=_as(server, caller))
            assert gone.status_code == 404, gone.text
    assert not found, f"{len(found)} failures:\n\n" + "\n\n".join(found)


async def test_body_of_undecodable_bytes_is_a_400_naming_the_body(
    server: RunningServer,
) -> None:
    """Found by the fuzzer: bytes that are not UTF-8 failed before JSON parsing and were
    answered without the error code and field that any other invalid JSON gets."""
    async with server.http("fuzz-billing", "service") as http:
        for body in (b"\xf4", b")\xee\x86\xa2{&D<\xc7\xdf3"):
            response = await http.post("/api/notifications", content=body,
                                       headers={"Content-Type": "application/json"})
            assert response.status_code == 400, response.text
            assert response.json() == {"error": {
                "code": "invalid_json", "message": "the body is not valid JSON",
                "field": "body"}}


async def test_a_405_allows_every_method_of_the_resource(server: RunningServer) -> None:
    """Found by schemathesis (`unsupported_method`, `allow_header_conformance`): FastAPI
    makes one route per method, and a 405 named only the methods of the first route of the
    path (`Allow: POST` for `/api/notifications`, which also answers GET). RFC 9110 wants
    every method the resource supports; the document lists them."""
    async with server.http("fuzz-ops", "admin") as http:
        spec = (await http.get("/openapi.json")).json()
        for template, item in spec["paths"].items():
            path = template.replace("{", "x").replace("}", "")
            documented = {method.upper() for method in item}
            for method in ("OPTIONS", "PATCH", "TRACE"):
                response = await http.request(method, path)
                assert response.status_code == 405, (method, template, response.text)
                allowed = {m.strip() for m in response.headers["Allow"].split(",")}
                assert allowed - {"HEAD"} == documented, (method, template)
                assert response.json()["error"]["code"] == "method_not_allowed"
