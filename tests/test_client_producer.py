"""The Python producer client (`tidings.client.TidingsClient`, `AsyncTidingsClient`)
against a real Tidings server, with a loopback proxy where answers must get lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.client_helpers import FlakyProxy, Served, serve_asgi
from tests.conftest import RunningServer, free_port, make_settings, start_server
from tidings.client import (
    Accepted,
    AsyncTidingsClient,
    AuthenticationError,
    Conflict,
    NotFound,
    Notification,
    NotificationRequest,
    PermissionDenied,
    Preference,
    RateLimited,
    Rejected,
    RetryPolicy,
    SubscriptionLimit,
    TidingsClient,
    Unavailable,
    ValidationError,
)
from tidings.client.errors import TidingsError, error_from_body
from tidings.client.models import batch_results
from tidings.client.retry import Attempts
from tidings.domain.model import utcnow
from tidings.store import subscriptions as subscription_store

FAST = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.2, deadline=20)


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[tuple[FlakyProxy, Served]]:
    flaky = FlakyProxy(server.url)
    served = await serve_asgi(flaky)
    try:
        yield flaky, served
    finally:
        await served.stop()


async def _stored(server: RunningServer, user: str) -> list[str]:
    async with AsyncTidingsClient(server.url, server.token(user)) as client:
        return [n.id async for n in client.list_notifications()]


async def test_notify_one_user_answers_a_typed_notification(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token("billing", "service")) as client:
        sent = await client.notify(user_id="alice", type="order_shipped", title="Shipped",
                                   message="Your order is on its way", channel="orders",
                                   priority="high", data={"order": 42}, media=["in_app"])
    assert isinstance(sent, Notification)
    assert (sent.user_id, sent.type, sent.channel, sent.priority, sent.status) == (
        "alice", "order_shipped", "orders", "high", "pending")
    assert sent.data == {"order": 42} and sent.created_at.tzinfo is not None
    assert [d.medium for d in sent.deliveries] == ["in_app"]


async def test_notify_several_users_answers_the_count(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token("billing", "service")) as client:
        accepted = await client.notify(user_ids=["bob", "carol"], type="news", title="Hi",
                                       message="Two at once")
    assert accepted == Accepted(count=2, channel="default")
    assert len(await _stored(server, "carol")) == 1


async def test_a_lost_answer_is_retried_with_the_same_key_and_stores_one(
    server: RunningServer, proxy: tuple[FlakyProxy, Served]
) -> None:
    flaky, served = proxy
    flaky.lose = 1  # Tidings stores the first attempt; its 201 never reaches the client
    async with AsyncTidingsClient(served.url, server.token("billing", "service"),
                                  retry=FAST) as client:
        sent = await client.notify(user_id="alice", type="t", title="Once", message="m")
    assert isinstance(sent, Notification)
    assert [s.status for s in flaky.seen] == [503, 201]
    assert flaky.seen[0].idempotency_key == flaky.seen[1].idempotency_key is not None
    assert await _stored(server, "alice") == [sent.id]


async def test_each_call_has_its_own_key_unless_given(
    server: RunningServer, proxy: tuple[FlakyProxy, Served]
) -> None:
    flaky, served = proxy
    async with AsyncTidingsClient(served.url, server.token("svc", "service")) as client:
        first = await client.notify(user_id="alice", type="t", title="a", message="m")
        second = await client.notify(user_id="alice", type="t", title="b", message="m")
        again = await client.notify(user_id="alice", type="t", title="a", message="m",
                                    idempotency_key="order-42-shipped")
        repeat = await client.notify(user_id="alice", type="t", title="a", message="m",
                                     idempotency_key="order-42-shipped")
    keys = [s.idempotency_key for s in flaky.seen]
    assert len(set(keys[:3])) == 3 and keys[3] == "order-42-shipped"
    assert isinstance(repeat, Notification) and isinstance(again, Notification)
    assert repeat.id == again.id and first.id != second.id  # type: ignore[union-attr]
    assert len(await _stored(server, "alice")) == 3


async def test_the_sync_client_retries_a_503_and_stores_one(
    server: RunningServer, proxy: tuple[FlakyProxy, Served]
) -> None:
    flaky, served = proxy
    flaky.lose, flaky.forward_lost = 2, False  # two 503s before Tidings sees anything

    def produce() -> Notification | Accepted:
        with TidingsClient(served.url, server.token("svc", "service"), retry=FAST) as client:
            return client.notify(user_id="dave", type="t", title="Sync", message="m")

    sent = await asyncio.to_thread(produce)  # the server runs on this thread's loop
    assert isinstance(sent, Notification)
    assert [s.status for s in flaky.seen] == [503, 503, 201]
    assert len({s.idempotency_key for s in flaky.seen}) == 1
    assert await _stored(server, "dave") == [sent.id]


async def test_retries_end_with_unavailable_when_the_answer_never_comes(
    server: RunningServer, proxy: tuple[FlakyProxy, Served]
) -> None:
    flaky, served = proxy
    flaky.lose, flaky.forward_lost = 10, False
    policy = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
    async with AsyncTidingsClient(served.url, server.token("svc", "service"),
                                  retry=policy) as client:
        with pytest.raises(Unavailable) as caught:
            await client.notify(user_id="erin", type="t", title="x", message="m")
    assert caught.value.status == 503 and len(flaky.seen) == 3


async def test_network_failures_are_retried_then_raised_as_unavailable() -> None:
    policy = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
    async with AsyncTidingsClient(f"http://127.0.0.1:{free_port()}", "token",
                                  retry=policy) as client:
        with pytest.raises(Unavailable) as caught:
            await client.notify(user_id="erin", type="t", title="x", message="m")
    assert caught.value.status is None and caught.value.code == "network_error"


async def test_a_429_is_waited_out_as_retry_after_says(database_url: str) -> None:
    limited = await start_server(make_settings(database_url, rate_limit_creates="2/second"))
    flaky = FlakyProxy(limited.url)
    served = await serve_asgi(flaky)
    try:
        async with AsyncTidingsClient(served.url, limited.token("svc", "service"),
                                      retry=RetryPolicy(deadline=20)) as client:
            sent = [await client.notify(user_id="fay", type="t", title=str(i), message="m")
                    for i in range(4)]
        refused = [i for i, s in enumerate(flaky.seen) if s.status == 429]
        assert refused, "the limit of 2/second was never reached"
        first = refused[0]
        assert flaky.seen[first].retry_after is not None
        assert int(flaky.seen[first].retry_after or "0") >= 1
        assert flaky.seen[first + 1].idempotency_key == flaky.seen[first].idempotency_key
        assert len(await _stored(limited, "fay")) == 4 == len({n.id for n in sent})  # type: ignore[union-attr]
    finally:
        await served.stop()
        await limited.stop()


async def test_a_429_past_the_attempts_raises_rate_limited(database_url: str) -> None:
    limited = await start_server(make_settings(database_url, rate_limit_creates="1/minute"))
    try:
        async with AsyncTidingsClient(limited.url, limited.token("svc", "service"),
                                      retry=RetryPolicy(attempts=1)) as client:
            await client.notify(user_id="fay", type="t", title="1", message="m")
            with pytest.raises(RateLimited) as caught:
                await client.notify(user_id="fay", type="t", title="2", message="m")
        assert caught.value.status == 429 and caught.value.code == "rate_limited"
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    finally:
        await limited.stop()


async def test_errors_are_typed_and_name_the_field(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as client:
        with pytest.raises(ValidationError) as invalid:
            await client.notify(user_id="alice", type="t", title="x", message="m",
                                priority="urgent")
        with pytest.raises(ValidationError) as untitled:
            await client.notify(user_id="alice", type="t", message="no title")
    assert invalid.value.status == 422 and invalid.value.field == "priority"
    assert untitled.value.field == "title"
    async with AsyncTidingsClient(server.url, "not-a-token") as client:
        with pytest.raises(AuthenticationError) as unauthenticated:
            await client.notify(user_id="alice", type="t", title="x", message="m")
    assert unauthenticated.value.status == 401
    async with AsyncTidingsClient(server.url, server.token("alice")) as client:
        with pytest.raises(PermissionDenied):
            await client.notify(user_id="bob", type="t", title="x", message="m")
        with pytest.raises(NotFound) as missing:
            await client.mark_read("0192f000-0000-7000-8000-000000000000")
    assert missing.value.status == 404 and missing.value.code == "not_found"


async def test_list_notifications_walks_every_page_and_mark_read(
    server: RunningServer
) -> None:
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as producer:
        created = [await producer.notify(user_id="gus", type="t", title=str(i), message="m")
                   for i in range(5)]
    async with AsyncTidingsClient(server.url, server.token("gus")) as client:
        listed = [n async for n in client.list_notifications(page_size=2)]
        assert [n.id for n in listed] == [n.id for n in reversed(created)]  # type: ignore[union-attr]
        read = await client.mark_read(listed[0].id)
        assert read.status == "read" and read.read_at is not None
        assert (await client.get(listed[0].id)).status == "read"
        unread = [n.id async for n in client.list_notifications(page_size=2, unread=True)]
        assert unread == [n.id for n in listed[1:]]
        page = await client.page(limit=1)
        assert page.unread_count == 4 and page.next_cursor
        await client.delete(listed[1].id)
        with pytest.raises(NotFound):
            await client.get(listed[1].id)


async def test_the_sync_client_reads_pages_marks_read_and_sets_preferences(
    server: RunningServer
) -> None:
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as producer:
        for i in range(3):
            await producer.notify(user_id="hal", type="t", title=str(i), message="m")

    def reader() -> tuple[list[str], str, list[Preference]]:
        with TidingsClient(server.url, server.token("hal")) as client:
            titles = [n.title for n in client.list_notifications(page_size=2)]
            first = next(iter(client.list_notifications()))
            status = client.mark_read(first.id).status
            client.set_preference(Preference(channel="orders", email_enabled=False))
            client.set_preferences([Preference(notification_type="news",
                                               push_enabled=False)])
            client.delete(client.page(limit=1).items[0].id)
            assert client.get(client.page(limit=1).items[0].id).title == "1"
            return titles, status, client.preferences()

    titles, status, preferences = await asyncio.to_thread(reader)
    assert titles == ["2", "1", "0"] and status == "read"
    by_key = {(p.channel, p.notification_type): p for p in preferences}
    assert by_key[("orders", "*")].email_enabled is False
    assert by_key[("*", "news")].push_enabled is False


async def test_async_preferences_round_trip(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token("ivy")) as client:
        stored = await client.set_preference(Preference(channel="orders",
                                                        in_app_enabled=False))
        assert (stored.channel, stored.in_app_enabled) == ("orders", False)
        both = await client.set_preferences([Preference(channel="a", email_enabled=False),
                                             Preference(channel="b", push_enabled=False)])
        assert [p.channel for p in both] == ["a", "b"]
        assert {p.channel for p in await client.preferences()} >= {"orders", "a", "b"}
        with pytest.raises(ValidationError) as invalid:
            await client.set_preference(Preference(channel="no spaces allowed"))
    assert invalid.value.field == "channel"


async def test_the_client_carries_the_sms_and_chat_flags(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token("ivy")) as client:
        stored = await client.set_preference(Preference(channel="otp", sms_enabled=False))
        both = await client.set_preferences([Preference(channel="otp", chat_enabled=False)])
    assert (stored.sms_enabled, stored.chat_enabled, stored.email_enabled) == (
        False, True, True)
    assert (both[0].sms_enabled, both[0].chat_enabled) == (False, False)  # sms kept


async def test_notify_many_follows_the_batch_contract(server: RunningServer) -> None:
    async with server.http() as anonymous:
        spec = (await anonymous.get("/openapi.json")).json()
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as client:
        if "/api/notifications/batch" not in spec["paths"]:
            pytest.skip("this server has no POST /api/notifications/batch yet "
                        "(DESIGN.md section 10); notify_many is built against the contract")
        results = await client.notify_many([
            NotificationRequest(user_id="jo", type="t", title="one", message="m"),
            {"user_id": "jo", "type": "t", "title": "two", "message": "m",
             "priority": "urgent"},
            NotificationRequest(user_ids=["jo", "kim"], type="t", title="three", message="m"),
        ])
    assert isinstance(results[0], Notification) and results[0].title == "one"
    assert isinstance(results[1], Rejected) and results[1].error.field == "priority"
    assert isinstance(results[2], Accepted) and results[2].count == 2


def test_batch_answers_decode_in_request_order() -> None:
    notification = {"id": "n1", "user_id": "jo", "type": "t", "title": "one", "message": "m",
                    "channel": "default", "priority": "medium", "status": "pending",
                    "created_at": "2026-01-01T00:00:00Z", "data": {}}
    results = batch_results({"results": [
        {"status": 201, "notification": notification},
        {"status": 422, "error": {"code": "validation_error", "message": "bad",
                                  "field": "priority"}},
        {"status": 202, "count": 3},
    ]})
    assert isinstance(results[0], Notification) and results[0].id == "n1"
    assert isinstance(results[1], Rejected)
    assert isinstance(results[1].error, ValidationError)
    assert results[1].error.field == "priority"
    assert results[2] == Accepted(count=3)


def test_backoff_grows_stays_jittered_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=5)
    assert [policy.backoff(n, rng=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 2.5]
    assert [policy.backoff(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_attempts_give_up_on_permanent_errors_on_count_and_at_the_deadline() -> None:
    now = [0.0]
    attempts = Attempts(RetryPolicy(attempts=3, initial_delay=1, deadline=10),
                        clock=lambda: now[0])
    attempts.begin(5)
    assert attempts.wait_after(ValidationError("bad", status=422)) is None
    assert attempts.wait_after(Unavailable("down", status=503)) is not None
    assert attempts.wait_after(RateLimited("slow", status=429, retry_after=10.5)) is None
    assert attempts.wait_after(RateLimited("slow", status=429, retry_after=3)) == 3
    attempts.begin(5)
    now[0] = 8.0
    assert attempts.begin(5) == 2  # an attempt's timeout never outlasts the deadline
    assert attempts.wait_after(Unavailable("down", status=503)) is None
    now[0] = 11.0
    assert attempts.remaining() == 0


def test_unexpected_error_bodies_still_give_typed_errors() -> None:
    error = error_from_body(500, "<html>oops</html>")
    assert type(error) is TidingsError and error.status == 500
    assert error.message == "HTTP 500" and "status=500" in repr(error)
    assert isinstance(error_from_body(None, {"code": "not_found", "message": "x"}), NotFound)


async def test_the_clients_manage_topics_and_list_them_page_by_page(
    server: RunningServer
) -> None:
    users = [f"u{n}" for n in range(5)]
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as producer:
        counts = await producer.change_subscribers("launches", add=users)
        assert (counts.added, counts.removed) == (5, 0)
        again = await producer.change_subscribers("launches", add=users[:2],
                                                  remove=["u4", "nobody"])
        assert (again.added, again.removed) == (0, 1)
        await producer.change_subscribers("deploys", add=["u0"])
        listed = [s.user_id async for s in producer.subscribers("launches", page_size=2)]
        assert listed == users[:4]
        sizes = [(c.channel, c.subscribers) async for c in producer.channels(page_size=1)]
        assert sizes == [("deploys", 1), ("launches", 4)]
        with pytest.raises(ValidationError) as bad:
            await producer.change_subscribers("user:bob", add=["u0"])
        assert bad.value.field == "channel"

    def sync_calls() -> tuple[list[str], list[str]]:
        with TidingsClient(server.url, server.token("svc", "service")) as producer:
            producer.change_subscribers("launches", remove=["u3"])
            names = [s.user_id for s in producer.subscribers("launches", page_size=2)]
        with TidingsClient(server.url, server.token("u0")) as user:
            own = [s.channel for s in user.subscriptions()]
            with pytest.raises(PermissionDenied):
                user.change_subscribers("launches", add=["u0"])
        return names, own

    names, own = await asyncio.to_thread(sync_calls)
    assert names == ["u0", "u1", "u2"] and own == ["deploys", "launches"]


async def test_a_change_over_the_cap_raises_subscription_limit_naming_the_users(
    server: RunningServer
) -> None:
    async with server.services.db.begin() as conn:
        await subscription_store.add(conn, [("full", f"t{n}") for n in range(200)],
                                     utcnow())
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as producer:
        with pytest.raises(SubscriptionLimit) as over:
            await producer.change_subscribers("launches", add=["ok", "full"])
        assert over.value.status == 409 and over.value.user_ids == ["full"]
        assert over.value.over == 1 and isinstance(over.value, Conflict)
        assert [s async for s in producer.subscribers("launches")] == []
        assert (await producer.subscriptions()) == []


async def test_preference_link_for_a_producer_and_refused_to_a_plain_user(
    server: RunningServer
) -> None:
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as producer:
        url = await producer.preference_link("ann@example")
    assert url.startswith(f"{server.settings.public_url}/preferences/")
    assert server.services.api.preference_centre.user_of(url.rsplit("/", 1)[1]) == "ann@example"

    def plain() -> None:
        with TidingsClient(server.url, server.token("ann")) as client:
            client.preference_link("ann")

    with pytest.raises(PermissionDenied):
        await asyncio.to_thread(plain)
