"""SMS end to end through the real queue (SQLite and PostgreSQL): a loopback stand-in for
Twilio's Messages API that checks the path, the basic authentication and the form body,
and one for the internal SMS service; Twilio's documented answers (sent, transient and
retried, permanent and dead, replay of the dead letter); failover between providers
(Twilio down -> the SMS service; SMTP down -> the HTTP email service) with both in the
history; the circuit breaker opening and closing; the text cut at 1,600 characters."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.web import Recorded, Reply, ScriptedHTTP, http_server
from tidings.delivery.breaker import BreakerState
from tidings.delivery.failover import Failover

pytestmark = pytest.mark.both_databases

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-secret-token"
FROM = "+15005550006"
PHONE = "+41446681800"
NOTE = {"type": "otp", "title": "Your code", "message": "123 456", "media": ["sms"]}
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"


def twilio_error(status: int, code: int, message: str, **headers: str) -> Reply:
    """An error as Twilio's 2010 API answers it in JSON."""
    return Reply(status, headers, {"code": code, "message": message, "status": status,
                                   "more_info": f"https://www.twilio.com/docs/errors/{code}"})


class TwilioStandIn(ScriptedHTTP):
    """Twilio's Messages API on loopback: a request with a wrong path, credentials or
    form body is answered 401/404/400 and recorded in `problems`, so a test that gets its
    SMS through knows the request was as Twilio wants it."""

    def __init__(self) -> None:
        super().__init__(default=Reply(201, json={"sid": "SM0001", "status": "queued"}))
        self.problems: list[str] = []
        self.check = self._judge

    def _judge(self, request: Recorded) -> Reply | None:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.method != "POST" or request.path != MESSAGES:
            self.problems.append(f"{request.method} {request.path}")
            return twilio_error(404, 20404, "The requested resource was not found")
        if request.headers.get("Authorization") != expected:
            self.problems.append("authorization")
            return twilio_error(401, 20003, "Authenticate")
        if request.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            self.problems.append("content type")
            return twilio_error(400, 21100, "not a form")
        form = self.form(request)
        if set(form) != {"To", "From", "Body"} or form["From"] != FROM:
            self.problems.append(f"form {sorted(form)}")
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        return None

    @staticmethod
    def form(request: Recorded) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(request.body.decode()).items()}


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[TwilioStandIn, str]]:
    stand_in = TwilioStandIn()
    async with http_server(stand_in) as url:
        yield stand_in, url


@pytest.fixture
async def sms_service() -> AsyncIterator[tuple[ScriptedHTTP, str]]:
    script = ScriptedHTTP(default=Reply(202, json={"id": "svc-1"}))
    async with http_server(script) as url:
        yield script, url


def twilio_settings(url: str) -> dict[str, Any]:
    return {"twilio_account_sid": SID, "twilio_auth_token": TOKEN, "twilio_from": FROM,
            "twilio_endpoint": url}


async def serve(database_url: str, **overrides: Any) -> RunningServer:
    settings = make_settings(database_url, retry_delays_ms=[20, 20, 20],
                             max_retry_attempts=3, **overrides)
    return await start_server(settings)


@pytest.fixture
async def texter(database_url: str, twilio: tuple[TwilioStandIn, str]
                 ) -> AsyncIterator[RunningServer]:
    running = await serve(database_url, **twilio_settings(twilio[1]))
    try:
        yield running
    finally:
        await running.stop()


async def add_phone(server: RunningServer, user_id: str = "alice",
                    phone: str = PHONE, **more: Any) -> None:
    async with server.http("accounts", "service") as http:
        response = await http.put(f"/api/users/{user_id}/contact",
                                  json={"phone": phone, **more})
    assert response.status_code == 200, response.text


async def create(server: RunningServer, **fields: Any) -> dict[str, Any]:
    async with server.http("auth", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_id": "alice", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def ended(server: RunningServer, note_id: str, medium: str = "sms",
                until: tuple[str, ...] = ("sent", "dead", "skipped")) -> dict[str, Any]:
    """The delivery of `medium` once it has ended, as an admin sees it (with history);
    polled: the worker settles in its own task and tells no HTTP client."""
    async with server.http("root", "admin") as http:
        for _ in range(500):
            page = (await http.get("/api/admin/deliveries",
                                   params={"medium": medium, "limit": 100})).json()
            mine = [d for d in page["items"] if d["notification_id"] == note_id]
            if mine and mine[0]["status"] in until:
                return dict((await http.get(f"/api/admin/deliveries/{mine[0]['id']}")).json())
            await asyncio.sleep(0.02)
    raise AssertionError(f"the {medium} delivery of {note_id} never ended")


def sms_failover(server: RunningServer) -> Failover[Any]:
    failover = server.services.core.delivery.senders.sms
    assert failover is not None
    return failover


# -- Twilio ------------------------------------------------------------------------------


async def test_an_sms_reaches_twilio_as_a_form_with_basic_auth(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, _ = twilio
    await add_phone(texter)
    note = await create(texter)
    delivery = await ended(texter, note["id"])
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    assert delivery["provider_message_id"] == "SM0001"
    assert [(h["provider"], h["outcome"], h["provider_id"]) for h in delivery["history"]] == [
        ("twilio", "sent", "SM0001")]
    assert stand_in.problems == []
    (request,) = stand_in.requests
    assert TwilioStandIn.form(request) == {"To": PHONE, "From": FROM,
                                           "Body": "Your code: 123 456"}
    assert texter.metric("tidings_delivery_attempts_total", medium="sms", provider="twilio",
                         outcome="sent") == 1
    async with texter.http("alice") as http:
        assert (await http.get(f"/api/notifications/{note['id']}")).json()["status"] == \
            "delivered"


@pytest.mark.parametrize("first", [
    twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "0"}),
    twilio_error(503, 20503, "Service Unavailable"),
    Reply(500),
    twilio_error(400, 21611, "This 'From' number has exceeded the maximum number of "
                 "queued messages"),
], ids=["429", "503", "500-no-body", "21611-queue-full"])
async def test_a_transient_twilio_answer_is_retried_then_delivered(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str], first: Reply
) -> None:
    stand_in, _ = twilio
    stand_in.replies.append(first)
    await add_phone(texter)
    note = await create(texter)
    delivery = await ended(texter, note["id"])
    assert delivery["status"] == "sent" and delivery["attempts"] == 2
    assert [h["outcome"] for h in delivery["history"]] == ["transient", "sent"]
    assert len(stand_in.requests) == 2 and stand_in.problems == []
    # The same text both times: a retry is the same message.
    assert len({request.body for request in stand_in.requests}) == 1


@pytest.mark.parametrize(("code", "message"), [
    (21211, "The 'To' number +41446681800 is not a valid phone number."),
    (21610, "Attempt to send to unsubscribed recipient"),
    (21614, "'To' number is not a valid mobile number"),
])
async def test_a_permanent_twilio_error_is_a_dead_letter_that_replays(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str], code: int, message: str
) -> None:
    stand_in, _ = twilio
    stand_in.replies.append(twilio_error(400, code, message))
    await add_phone(texter)
    note = await create(texter)
    dead = await ended(texter, note["id"])
    assert dead["status"] == "dead" and dead["attempts"] == 1
    assert str(code) in dead["last_error"] and "twilio" in dead["last_error"]
    assert [(h["provider"], h["outcome"], h["code"]) for h in dead["history"]] == [
        ("twilio", "permanent", str(code))]
    async with texter.http("alice") as http:
        assert (await http.get(f"/api/notifications/{note['id']}")).json()["status"] == "failed"
    async with texter.http("root", "admin") as http:
        replayed = await http.post(f"/api/admin/deliveries/{dead['id']}/replay")
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    delivery = await ended(texter, note["id"], until=("sent",))
    assert delivery["attempts"] == 1
    assert [h["outcome"] for h in delivery["history"]] == ["permanent", "sent"]
    async with texter.http("alice") as http:
        assert (await http.get(f"/api/notifications/{note['id']}")).json()["status"] == \
            "delivered"


async def test_a_long_text_is_cut_to_1600_characters(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, _ = twilio
    await add_phone(texter)
    note = await create(texter, title="Report", message="\U0001F600" * 3000)
    assert (await ended(texter, note["id"]))["status"] == "sent"
    body = TwilioStandIn.form(stand_in.requests[0])["Body"]
    assert len(body) == 1600  # code points, an emoji counting as one
    assert body.startswith("Report: \U0001F600") and body.endswith("\u2026")


async def test_a_template_s_sms_part_is_the_text(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, _ = twilio
    async with texter.http("root", "admin") as http:
        made = await http.post("/api/admin/templates", json={"key": "otp", "variants": {
            "en": {"title": "Code", "message": "Your code is {{ code }}",
                   "sms": "{{ code }} is your code. Never share it."}}})
    assert made.status_code == 201, made.text
    await add_phone(texter)
    note = await create(texter, title=None, message=None, template="otp",
                        variables={"code": "4711"})
    assert (await ended(texter, note["id"]))["status"] == "sent"
    assert TwilioStandIn.form(stand_in.requests[0])["Body"] == \
        "4711 is your code. Never share it."


async def test_without_a_phone_number_or_with_sms_turned_off_it_is_skipped(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, _ = twilio
    unreachable = await create(texter)
    skipped = await ended(texter, unreachable["id"])
    assert skipped["status"] == "skipped" and skipped["last_error"] == \
        "the user has no phone number"
    await add_phone(texter)
    async with texter.http("alice") as http:
        put = await http.put("/api/notifications/preferences", json={"sms_enabled": False})
    assert put.status_code == 200 and put.json()["sms_enabled"] is False
    turned_off = await create(texter)
    assert turned_off["deliveries"] == []
    assert stand_in.requests == []


async def test_quiet_hours_hold_an_sms_and_critical_goes_through(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, _ = twilio
    # A window of all day but one minute: "now" is inside it whatever the clock says.
    await add_phone(texter, quiet_hours={"start": "00:00", "end": "23:59"})
    async with texter.http("accounts", "service") as http:
        contact = (await http.get("/api/users/alice/contact")).json()
    assert contact["quiet_hours"] == {"start": "00:00", "end": "23:59"}
    held = await create(texter)
    urgent = await create(texter, priority="critical")
    assert (await ended(texter, urgent["id"]))["status"] == "sent"
    async with texter.http("alice") as http:
        for _ in range(250):
            body = (await http.get(f"/api/notifications/{held['id']}")).json()
            if body["deliveries"][0]["deferred_until"] is not None:
                break
            await asyncio.sleep(0.02)
    (state,) = body["deliveries"]
    assert state["status"] == "pending" and state["deferred_until"] is not None
    assert len(stand_in.requests) == 1  # the critical one only


async def test_a_digest_sends_one_sms_for_all_its_notifications(
    texter: RunningServer, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, _ = twilio
    await add_phone(texter)
    digest = {"key": "codes", "window_seconds": 1}
    first = await create(texter, title="First", digest=digest)
    second = await create(texter, title="Second", digest=digest)
    one, two = await ended(texter, first["id"]), await ended(texter, second["id"])
    assert one["status"] == two["status"] == "sent"
    (request,) = stand_in.requests
    assert TwilioStandIn.form(request)["Body"] == "2 new notifications: First, Second"
    async with texter.http("alice") as http:
        body = (await http.get(f"/api/notifications/{first['id']}")).json()
    assert body["deliveries"][0]["digest_id"] is not None


async def test_past_the_hourly_limit_an_sms_joins_the_next_hour_s_digest(
    database_url: str, twilio: tuple[TwilioStandIn, str]
) -> None:
    stand_in, url = twilio
    server = await serve(database_url, throttle_per_hour=1, **twilio_settings(url))
    try:
        await add_phone(server)
        first = await create(server)
        assert (await ended(server, first["id"]))["status"] == "sent"
        second = await create(server)
        async with server.http("alice") as http:
            for _ in range(250):
                body = (await http.get(f"/api/notifications/{second['id']}")).json()
                if body["deliveries"][0]["digest_id"] is not None:
                    break
                await asyncio.sleep(0.02)
    finally:
        await server.stop()
    (state,) = body["deliveries"]
    assert state["status"] == "pending" and state["digest_id"] is not None  # held, kept
    assert len(stand_in.requests) == 1


async def test_chat_has_no_provider_and_is_skipped(texter: RunningServer) -> None:
    note = await create(texter, media=["in_app", "chat"])
    chat = next(d for d in note["deliveries"] if d["medium"] == "chat")
    assert chat["status"] == "skipped"
    assert chat["last_error"] == "no chat provider is configured"


# -- the SMS service ---------------------------------------------------------------------


async def test_the_sms_service_gets_json_with_a_bearer_key(
    database_url: str, sms_service: tuple[ScriptedHTTP, str]
) -> None:
    script, url = sms_service
    server = await serve(database_url, sms_service_url=f"{url}/sms",
                         sms_service_api_key="svc-key")
    try:
        await add_phone(server)
        note = await create(server)
        delivery = await ended(server, note["id"])
    finally:
        await server.stop()
    assert delivery["status"] == "sent" and delivery["provider_message_id"] == "svc-1"
    assert [h["provider"] for h in delivery["history"]] == ["http"]
    (request,) = script.requests
    assert request.path == "/sms"
    assert request.headers["Authorization"] == "Bearer svc-key"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"to": PHONE, "body": "Your code: 123 456",
                                        "notification_id": note["id"], "user_id": "alice"}


async def test_an_sms_service_refusal_is_permanent(
    database_url: str, sms_service: tuple[ScriptedHTTP, str]
) -> None:
    script, url = sms_service
    script.replies.append(Reply(422, json={"error": "no such number"}))
    server = await serve(database_url, sms_service_url=url)
    try:
        await add_phone(server)
        dead = await ended(server, (await create(server))["id"])
    finally:
        await server.stop()
    assert dead["status"] == "dead" and "no such number" in dead["last_error"]


# -- failover and the circuit breaker ----------------------------------------------------


async def test_twilio_down_fails_over_to_the_sms_service_within_one_attempt(
    database_url: str, twilio: tuple[TwilioStandIn, str],
    sms_service: tuple[ScriptedHTTP, str],
) -> None:
    stand_in, twilio_url = twilio
    stand_in.default = twilio_error(503, 20503, "Service Unavailable")
    script, url = sms_service
    server = await serve(database_url, sms_service_url=url, **twilio_settings(twilio_url))
    try:
        await add_phone(server)
        delivery = await ended(server, (await create(server))["id"])
        assert server.metric("tidings_delivery_attempts_total", medium="sms",
                             provider="twilio", outcome="transient") == 1
        assert server.metric("tidings_delivery_attempts_total", medium="sms",
                             provider="http", outcome="sent") == 1
    finally:
        await server.stop()
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    assert [(h["provider"], h["outcome"]) for h in delivery["history"]] == [
        ("twilio", "transient"), ("http", "sent")]
    assert len(stand_in.requests) == 1 and len(script.requests) == 1


async def test_a_permanent_answer_does_not_fail_over(
    database_url: str, twilio: tuple[TwilioStandIn, str],
    sms_service: tuple[ScriptedHTTP, str],
) -> None:
    stand_in, twilio_url = twilio
    stand_in.replies.append(twilio_error(400, 21211, "invalid To"))
    script, url = sms_service
    server = await serve(database_url, sms_service_url=url, **twilio_settings(twilio_url))
    try:
        await add_phone(server)
        dead = await ended(server, (await create(server))["id"])
    finally:
        await server.stop()
    assert dead["status"] == "dead"
    assert [h["provider"] for h in dead["history"]] == ["twilio"]
    assert script.requests == []


async def test_sms_providers_names_the_order(
    database_url: str, twilio: tuple[TwilioStandIn, str],
    sms_service: tuple[ScriptedHTTP, str],
) -> None:
    stand_in, twilio_url = twilio
    _, url = sms_service
    server = await serve(database_url, sms_service_url=url, sms_providers=["http", "twilio"],
                         **twilio_settings(twilio_url))
    try:
        await add_phone(server)
        delivery = await ended(server, (await create(server))["id"])
    finally:
        await server.stop()
    assert [h["provider"] for h in delivery["history"]] == ["http"]
    assert stand_in.requests == []


async def test_the_breaker_skips_a_failing_provider_then_tries_it_again(
    database_url: str, twilio: tuple[TwilioStandIn, str],
    sms_service: tuple[ScriptedHTTP, str],
) -> None:
    stand_in, twilio_url = twilio
    stand_in.replies.extend([twilio_error(503, 20503, "down")] * 2)
    _, url = sms_service
    # A cool-down no slow run outlasts; the test moves the breaker's clock past it.
    server = await serve(database_url, sms_service_url=url, provider_breaker_failures=2,
                         provider_breaker_cooldown_s=600, **twilio_settings(twilio_url))
    breaker = sms_failover(server).breaker("twilio")
    offset = 0.0
    breaker._clock = lambda: time.monotonic() + offset
    try:
        await add_phone(server)
        providers = []
        for _ in range(3):  # one at a time: each sees the breaker the last one left
            delivery = await ended(server, (await create(server))["id"])
            providers.append([(h["provider"], h["outcome"]) for h in delivery["history"]])
        assert breaker.state is BreakerState.OPEN
        offset = 601.0  # the cool-down runs out
        assert breaker.state is BreakerState.HALF_OPEN
        after = await ended(server, (await create(server))["id"])
    finally:
        await server.stop()
    assert providers == [
        [("twilio", "transient"), ("http", "sent")],
        [("twilio", "transient"), ("http", "sent")],
        [("http", "sent")],  # open: Twilio is not asked
    ]
    # Half-open: one request tries Twilio again, which now answers; the breaker closes.
    assert [(h["provider"], h["outcome"]) for h in after["history"]] == [("twilio", "sent")]
    assert breaker.state is BreakerState.CLOSED
    assert len(stand_in.requests) == 3


async def test_every_provider_paused_is_a_transient_failure_retried_later(
    database_url: str, twilio: tuple[TwilioStandIn, str],
) -> None:
    stand_in, twilio_url = twilio
    stand_in.replies.append(twilio_error(503, 20503, "down"))
    server = await serve(database_url, provider_breaker_failures=1,
                         provider_breaker_cooldown_s=0.3, **twilio_settings(twilio_url))
    try:
        await add_phone(server)
        delivery = await ended(server, (await create(server))["id"])
    finally:
        await server.stop()
    # Twilio failed once (the breaker opened); the retry found every provider paused and
    # was put off until the cool-down's end, not lost; then Twilio took it.
    assert delivery["status"] == "sent" and delivery["attempts"] == 3
    assert [(h["provider"], h["outcome"], h["code"]) for h in delivery["history"]] == [
        ("twilio", "transient", "20503"), (None, "transient", "breaker_open"),
        ("twilio", "sent", "201")]


# -- email failover ----------------------------------------------------------------------


async def test_smtp_down_fails_over_to_the_http_email_service(database_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once released
    script = ScriptedHTTP(default=Reply(202, json={"id": "mail-1"}))
    async with http_server(script) as url:
        server = await serve(database_url, smtp_host="127.0.0.1", smtp_port=closed,
                             smtp_starttls=False, email_service_url=f"{url}/mail")
        try:
            async with server.http("accounts", "service") as http:
                await http.put("/api/users/alice/contact", json={"email": "a@example.test"})
            note = await create(server, media=["email"])
            delivery = await ended(server, note["id"], medium="email")
        finally:
            await server.stop()
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    assert [(h["provider"], h["outcome"]) for h in delivery["history"]] == [
        ("smtp", "transient"), ("http", "sent")]
    assert json.loads(script.requests[0].body)["to"] == "a@example.test"
