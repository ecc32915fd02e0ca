"""Email senders against real servers on loopback: an SMTP server (aiosmtpd) with scripted
answers, plain, STARTTLS and implicit TLS with a private CA, and an HTTP email service."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import trustme

from tests.fakes.smtp import Authenticator, ScriptedHandler, raw_server, smtp_server
from tests.fakes.web import HANG, Reply, ScriptedHTTP, http_server
from tidings.config.settings import Settings
from tidings.delivery.email.http import HttpEmailSender
from tidings.delivery.email.sender import build_email_sender
from tidings.delivery.email.smtp import SmtpSender
from tidings.delivery.messages import Email
from tidings.delivery.outcome import Outcome

FROM = "Tidings <noreply@tidings.test>"
EVENT_TIMEOUT = 10.0


def make_email(n: int = 1, **overrides: Any) -> Email:
    fields: dict[str, Any] = {
        "to": "ada@example.com",
        "subject": "Grüße — 新しい通知",
        "text": f"Hello number {n}, ünïcode body",
        "html": f"<p>Hello number <b>{n}</b></p>",
        "message_id": f"<d{n}.n{n}@tidings.test>",
        "unsubscribe_url": f"https://tidings.test/unsubscribe/tok{n}",
        "idempotency_key": f"delivery-{n}",
    }
    fields.update(overrides)
    return Email(**fields)


def plain_sender(port: int, **kwargs: Any) -> SmtpSender:
    kwargs.setdefault("timeout_s", EVENT_TIMEOUT)
    return SmtpSender(host="127.0.0.1", port=port, sender=FROM, starttls=False, **kwargs)


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


# -- SMTP: the message -----------------------------------------------------------------


async def test_smtp_delivers_text_and_html_parts_with_one_click_unsubscribe(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    sender = plain_sender(port)
    email = make_email()
    attempt = await sender.send(email)
    await sender.close()

    assert attempt.outcome is Outcome.SENT
    assert attempt.code == "250"
    assert attempt.provider_id == email.message_id
    [got] = handler.received
    assert not got.tls
    assert got.mail_from == "noreply@tidings.test"
    assert got.rcpt_tos == ["ada@example.com"]
    message = got.message
    assert message["Message-ID"] == email.message_id
    assert message["From"] == FROM
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Grüße — 新しい通知"
    assert message["Date"]
    assert message["List-Unsubscribe"] == "<https://tidings.test/unsubscribe/tok1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and text.get_content().strip() == "Hello number 1, ünïcode body"
    assert html is not None and html.get_content().strip() == "<p>Hello number <b>1</b></p>"


async def test_smtp_text_only_email_is_a_single_part_without_unsubscribe_headers(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    sender = plain_sender(port)
    attempt = await sender.send(make_email(html=None, unsubscribe_url=None,
                                           subject="line one\r\nBcc: evil@example.com"))
    await sender.close()

    assert attempt.outcome is Outcome.SENT
    message = handler.received[0].message
    assert message.get_content_type() == "text/plain"
    assert "List-Unsubscribe" not in message
    assert "Bcc" not in message  # a line break in a title never becomes a header
    assert message["Subject"] == "line one Bcc: evil@example.com"


async def test_smtp_long_subject_and_unicode_sender_name_survive_encoding(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    sender = SmtpSender(host="127.0.0.1", port=port, sender="Tidings Bénévole <bot@tidings.test>",
                        starttls=False)
    subject = "Ünïcödé " * 30 + "and a very long plain tail " * 10
    attempt = await sender.send(make_email(subject=subject.strip()))
    await sender.close()

    assert attempt.outcome is Outcome.SENT
    message = handler.received[0].message
    assert message["Subject"] == subject.strip()
    assert message["From"].addresses[0].display_name == "Tidings Bénévole"
    assert message["From"].addresses[0].addr_spec == "bot@tidings.test"
    assert handler.received[0].mail_from == "bot@tidings.test"
    assert all(len(line) <= 998 for line in handler.received[0].raw.splitlines())


async def test_smtp_message_id_is_the_same_on_every_attempt(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    handler.data.append("451 4.3.0 try again")
    sender = plain_sender(port)
    email = make_email()
    first = await sender.send(email)
    second = await sender.send(email)
    await sender.close()

    assert (first.outcome, second.outcome) == (Outcome.TRANSIENT, Outcome.SENT)
    assert handler.received[0].message["Message-ID"] == email.message_id


# -- SMTP: what the server answers -----------------------------------------------------


async def test_smtp_greylisting_451_is_transient_then_the_retry_is_sent(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    handler.rcpt.append("451 4.7.1 Greylisted, come back later")
    sender = plain_sender(port)
    first = await sender.send(make_email())
    second = await sender.send(make_email())
    await sender.close()

    assert first.outcome is Outcome.TRANSIENT
    assert first.code == "451"
    assert first.error is not None and first.error.startswith("RCPT: 451")
    assert second.outcome is Outcome.SENT
    assert len(handler.received) == 1


@pytest.mark.parametrize(
    ("stage", "answer", "outcome"),
    [
        ("mail", "451 4.3.2 system busy", Outcome.TRANSIENT),
        ("mail", "553 5.1.8 sender rejected", Outcome.PERMANENT),
        ("rcpt", "550 5.1.1 no such user", Outcome.PERMANENT),
        ("rcpt", "452 4.2.2 mailbox full", Outcome.TRANSIENT),
        ("data", "452 4.3.1 insufficient storage", Outcome.TRANSIENT),
        ("data", "554 5.7.1 rejected as spam", Outcome.PERMANENT),
    ],
)
async def test_smtp_4xx_is_transient_and_5xx_permanent_at_every_stage(
    smtp: tuple[ScriptedHandler, int], stage: str, answer: str, outcome: Outcome
) -> None:
    handler, port = smtp
    script: deque[str] = getattr(handler, stage)
    script.append(answer)
    sender = plain_sender(port)
    attempt = await sender.send(make_email())
    await sender.close()

    assert attempt.outcome is outcome
    assert attempt.code == answer[:3]
    assert handler.received == []


@pytest.mark.parametrize(
    ("greeting", "outcome"),
    [(b"421 4.3.2 too busy, try later\r\n", Outcome.TRANSIENT),
     (b"554 5.3.2 no service here\r\n", Outcome.PERMANENT)],
)
async def test_smtp_answer_at_connect_is_classified_by_its_code(
    greeting: bytes, outcome: Outcome
) -> None:
    async with raw_server(greeting) as port:
        sender = plain_sender(port)
        attempt = await sender.send(make_email())
        await sender.close()

    assert attempt.outcome is outcome
    assert attempt.code == greeting[:3].decode()
    assert attempt.error is not None and attempt.error.startswith("connect:")


async def test_smtp_refused_connection_is_transient(closed_port: int) -> None:
    sender = plain_sender(closed_port)
    attempt = await sender.send(make_email())
    await sender.close()

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.code is None


async def test_smtp_server_that_never_answers_is_a_transient_timeout() -> None:
    async with raw_server(None) as port:
        sender = plain_sender(port, timeout_s=0.3)
        attempt = await sender.send(make_email())
        await sender.close()

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.error == "timed out"


async def test_smtp_cancelled_send_raises_and_leaves_nothing_pooled() -> None:
    accepted = asyncio.Event()
    async with raw_server(None, accepted) as port:
        sender = plain_sender(port)
        task = asyncio.create_task(sender.send(make_email()))
        await asyncio.wait_for(accepted.wait(), EVENT_TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sender.close()


@pytest.mark.parametrize(
    "address",
    ["", "no-at-sign", "ada@", "@example.com", "ada lovelace@example.com",
     "ada@example..com", "ada@example.com\r\nRCPT TO:<eve@example.com>",
     "Ada <ada@example.com>", "a" * 250 + "@example.com"],
)
async def test_smtp_invalid_address_is_permanent_without_connecting(
    smtp: tuple[ScriptedHandler, int], address: str
) -> None:
    handler, port = smtp
    sender = plain_sender(port)
    attempt = await sender.send(make_email(to=address))
    await sender.close()

    assert attempt.outcome is Outcome.PERMANENT
    assert attempt.error == "invalid recipient address"
    assert handler.connections == 0


async def test_smtp_unicode_mailbox_needs_smtputf8_or_is_permanent() -> None:
    without = ScriptedHandler()
    async with smtp_server(without) as port:
        sender = plain_sender(port)
        refused = await sender.send(make_email(to="jürgen@example.com"))
        await sender.close()
    with_utf8 = ScriptedHandler()
    async with smtp_server(with_utf8, enable_SMTPUTF8=True) as port:
        sender = plain_sender(port)
        sent = await sender.send(make_email(to="jürgen@example.com"))
        await sender.close()

    assert refused.outcome is Outcome.PERMANENT
    assert sent.outcome is Outcome.SENT
    assert with_utf8.received[0].rcpt_tos == ["jürgen@example.com"]


# -- SMTP: authentication and TLS ------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_authenticates_when_a_username_is_set_and_535_is_permanent() -> None:
    handler = ScriptedHandler()
    auth: dict[str, Any] = {"auth_required": True, "auth_require_tls": False,
            "authenticator": Authenticator("mailer", "s3cret-pass")}
    async with smtp_server(handler, **auth) as port:
        good = plain_sender(port, username="mailer", password="s3cret-pass")
        sent = await good.send(make_email())
        await good.close()
        bad = plain_sender(port, username="mailer", password="wrong")
        refused = await bad.send(make_email(2))
        await bad.close()
        anonymous = plain_sender(port)
        unauthenticated = await anonymous.send(make_email(3))
        await anonymous.close()

    assert sent.outcome is Outcome.SENT
    assert handler.received[0].authenticated
    assert refused.outcome is Outcome.PERMANENT
    assert refused.code == "535"
    assert refused.error is not None and "wrong" not in refused.error
    assert refused.error.startswith("AUTH: 535")
    assert unauthenticated.outcome is Outcome.PERMANENT  # 530 authentication required
    assert len(handler.received) == 1


async def test_smtp_starttls_upgrade_with_a_trusted_certificate(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler, tls_context=server_tls, require_starttls=True,
                           auth_required=True, authenticator=Authenticator("u", "p")) as port:
        sender = SmtpSender(host="127.0.0.1", port=port, sender=FROM, username="u",
                            password="p", starttls=True, tls_context=client_tls)
        attempt = await sender.send(make_email())
        await sender.close()

    assert attempt.outcome is Outcome.SENT
    assert handler.received[0].tls
    assert handler.received[0].authenticated


async def test_smtp_starttls_required_but_not_offered_sends_nothing_in_plain_text(
    smtp: tuple[ScriptedHandler, int], client_tls: ssl.SSLContext
) -> None:
    handler, port = smtp
    sender = SmtpSender(host="127.0.0.1", port=port, sender=FROM, starttls=True,
                        tls_context=client_tls, timeout_s=EVENT_TIMEOUT)
    attempt = await sender.send(make_email())
    await sender.close()

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.error is not None and "STARTTLS" in attempt.error
    assert handler.received == []


async def test_smtp_implicit_tls_wins_over_starttls(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler, implicit_tls=server_tls) as port:
        sender = SmtpSender(host="127.0.0.1", port=port, sender=FROM, starttls=True,
                            implicit_tls=True, tls_context=client_tls)
        attempt = await sender.send(make_email())
        await sender.close()

    assert attempt.outcome is Outcome.SENT
    assert handler.received[0].tls


async def test_smtp_untrusted_certificate_is_transient_and_sends_nothing(
    server_tls: ssl.SSLContext,
) -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler, implicit_tls=server_tls) as port:
        sender = SmtpSender(host="127.0.0.1", port=port, sender=FROM, implicit_tls=True,
                            tls_context=ssl.create_default_context(), timeout_s=EVENT_TIMEOUT)
        attempt = await sender.send(make_email())
        await sender.close()

    assert attempt.outcome is Outcome.TRANSIENT
    assert handler.received == []


# -- SMTP: the connection pool ---------------------------------------------------------


async def test_smtp_pool_sends_200_concurrent_emails_exactly_once_over_few_connections(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    handler.expected = 200
    sender = plain_sender(port, pool_size=4)
    emails = [make_email(n) for n in range(200)]
    attempts = await asyncio.gather(*(sender.send(email) for email in emails))
    await asyncio.wait_for(handler.arrived.wait(), EVENT_TIMEOUT)
    await sender.close()

    assert all(attempt.outcome is Outcome.SENT for attempt in attempts)
    ids = [got.message["Message-ID"] for got in handler.received]
    assert sorted(ids) == sorted(email.message_id for email in emails)
    assert 1 <= handler.connections <= 4


async def test_smtp_reuses_a_connection_across_sends(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    sender = plain_sender(port)
    for n in range(3):
        assert (await sender.send(make_email(n))).outcome is Outcome.SENT
    await sender.close()

    assert handler.connections == 1
    assert handler.quits == 1


async def test_smtp_a_failed_transaction_drops_its_connection_and_the_next_reconnects(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    handler.data.append("554 5.7.1 no")
    sender = plain_sender(port)
    first = await sender.send(make_email(1))
    second = await sender.send(make_email(2))
    await sender.close()

    assert (first.outcome, second.outcome) == (Outcome.PERMANENT, Outcome.SENT)
    assert handler.connections == 2


async def test_smtp_pooled_connection_dropped_by_the_server_is_replaced_transparently() -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        sender = plain_sender(port)
        assert (await sender.send(make_email(1))).outcome is Outcome.SENT
    # The first server is gone with the pooled connection; a new one on another port
    # can't be reached through it, so restart on the same port.
    async with smtp_server(handler, port=port) as again:
        assert again == port
        attempt = await sender.send(make_email(2))
        await sender.close()

    assert attempt.outcome is Outcome.SENT
    assert len(handler.received) == 2


async def test_smtp_close_lets_a_send_in_flight_finish_then_quits_its_connection(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    handler.gate = asyncio.Event()
    sender = plain_sender(port)
    task = asyncio.create_task(sender.send(make_email()))
    await asyncio.wait_for(handler.in_data.wait(), EVENT_TIMEOUT)
    await sender.close()
    handler.gate.set()
    attempt = await task
    await asyncio.wait_for(handler.quit_seen.wait(), EVENT_TIMEOUT)

    assert attempt.outcome is Outcome.SENT
    assert len(handler.received) == 1


async def test_smtp_idle_connection_is_closed_with_quit_after_idle_time(
    smtp: tuple[ScriptedHandler, int],
) -> None:
    handler, port = smtp
    sender = plain_sender(port, idle_s=0.05)
    assert (await sender.send(make_email())).outcome is Outcome.SENT
    await asyncio.wait_for(handler.quit_seen.wait(), EVENT_TIMEOUT)
    await sender.close()

    assert handler.quits == 1


# -- HTTP email service ----------------------------------------------------------------


@pytest.fixture
async def service() -> AsyncIterator[tuple[ScriptedHTTP, str]]:
    script = ScriptedHTTP(default=Reply(202, json={"id": "svc-123"}))
    async with http_server(script) as base:
        yield script, f"{base}/v1/send"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def test_http_email_posts_the_documented_json_with_bearer_and_idempotency_key(
    service: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = service
    sender = HttpEmailSender(client, url=url, sender=FROM, api_key="key-abc")
    email = make_email()
    attempt = await sender.send(email)
    await sender.close()

    assert attempt.outcome is Outcome.SENT
    assert attempt.code == "202"
    assert attempt.provider_id == "svc-123"
    [request] = script.requests
    assert request.method == "POST"
    assert request.path == "/v1/send"
    assert request.headers["Authorization"] == "Bearer key-abc"
    assert request.headers["Idempotency-Key"] == "delivery-1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "to": "ada@example.com",
        "from": FROM,
        "subject": "Grüße — 新しい通知",
        "text": "Hello number 1, ünïcode body",
        "html": "<p>Hello number <b>1</b></p>",
        "message_id": "<d1.n1@tidings.test>",
        "headers": {
            "Message-ID": "<d1.n1@tidings.test>",
            "List-Unsubscribe": "<https://tidings.test/unsubscribe/tok1>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }


async def test_http_email_without_api_key_sends_no_authorization_and_keeps_message_id(
    service: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = service
    script.default = Reply(200)
    sender = HttpEmailSender(client, url=url, sender=FROM)
    attempt = await sender.send(make_email(html=None, unsubscribe_url=None))

    assert attempt.outcome is Outcome.SENT
    assert attempt.provider_id == "<d1.n1@tidings.test>"
    request = script.requests[0]
    assert "Authorization" not in request.headers
    body = json.loads(request.body)
    assert body["html"] is None
    assert body["headers"] == {"Message-ID": "<d1.n1@tidings.test>"}


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(429, {"Retry-After": "17"}, {"error": "slow down"}), Outcome.TRANSIENT, 17.0),
        (Reply(503, {"Retry-After": "5"}), Outcome.TRANSIENT, 5.0),
        (Reply(500), Outcome.TRANSIENT, None),
        (Reply(408), Outcome.TRANSIENT, None),
        (Reply(400, json={"error": "bad recipient"}), Outcome.PERMANENT, None),
        (Reply(401), Outcome.PERMANENT, None),
        (Reply(302, {"Location": "https://elsewhere.test/"}), Outcome.PERMANENT, None),
    ],
)
async def test_http_email_answers_are_classified_and_retry_after_honoured(
    service: tuple[ScriptedHTTP, str], client: httpx.AsyncClient,
    reply: Reply, outcome: Outcome, retry_after: float | None,
) -> None:
    script, url = service
    script.replies.append(reply)
    sender = HttpEmailSender(client, url=url, sender=FROM)
    attempt = await sender.send(make_email())

    assert attempt.outcome is outcome
    assert attempt.code == str(reply.status)
    assert attempt.retry_after_s == retry_after
    if isinstance(reply.json, dict):
        assert attempt.error == f"HTTP {reply.status}: {reply.json['error']}"
    assert len(script.requests) == 1


@pytest.mark.parametrize("body", ["queued", "x" * 100_000, ["not", "an", "object"]])
async def test_http_email_answer_without_an_id_keeps_the_message_id(
    service: tuple[ScriptedHTTP, str], client: httpx.AsyncClient, body: object
) -> None:
    script, url = service
    script.replies.append(Reply(202, json=body))
    sender = HttpEmailSender(client, url=url, sender=FROM)
    attempt = await sender.send(make_email())

    assert attempt.outcome is Outcome.SENT
    assert attempt.provider_id == "<d1.n1@tidings.test>"


async def test_http_email_service_that_hangs_is_a_transient_timeout(
    service: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = service
    script.replies.append(HANG)
    sender = HttpEmailSender(client, url=url, sender=FROM, timeout_s=0.3)
    attempt = await sender.send(make_email())

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.error == "timed out"


async def test_http_email_refused_connection_is_transient(
    client: httpx.AsyncClient, closed_port: int
) -> None:
    sender = HttpEmailSender(client, url=f"http://127.0.0.1:{closed_port}/send", sender=FROM)
    attempt = await sender.send(make_email())

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.code is None


async def test_http_email_invalid_address_is_permanent_without_a_request(
    service: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = service
    sender = HttpEmailSender(client, url=url, sender=FROM)
    attempt = await sender.send(make_email(to="not an address"))

    assert attempt.outcome is Outcome.PERMANENT
    assert script.requests == []


# -- choosing the transport ------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        ({"SMTP_HOST": "mail.test"}, SmtpSender),
        ({"EMAIL_SERVICE_URL": "https://mailer.test/send"}, HttpEmailSender),
        ({"SMTP_HOST": "mail.test", "EMAIL_SERVICE_URL": "https://mailer.test/send"},
         SmtpSender),
    ],
)
async def test_build_email_sender_picks_the_configured_transport_smtp_first(
    client: httpx.AsyncClient, config: dict[str, str], expected: type | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SMTP_HOST", "EMAIL_SERVICE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None, JWT_SECRET="x" * 32)  # type: ignore[call-arg]
    sender = build_email_sender(settings, client)

    if expected is None:
        assert sender is None
    else:
        assert isinstance(sender, expected)
        assert sender is not None
        await sender.close()
