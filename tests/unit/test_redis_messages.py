"""The Redis fan-out's wire format: what one node writes, another reads back as the same
record; what it cannot understand, it drops instead of failing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgpack

from tidings.domain.delivery import DeliveryState
from tidings.domain.notification import InboxAction, InboxChange, Notification, StatusChange
from tidings.realtime.redis import messages as wire
from tidings.realtime.redis.shard import MAX_CHANNELS_PER_COMMAND, _batches

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def note(**changes: object) -> Notification:
    values: dict[str, object] = dict(
        id="0193-n", user_id="alice", type="invoice", title="Invoice", message="Ready",
        channel="billing", priority="high", status="pending",
        scheduled_at=NOW - timedelta(seconds=5), created_at=NOW - timedelta(minutes=1),
        visible_at=NOW - timedelta(seconds=5), delivered_at=None, read_at=None,
        data={"invoice": 42, "tags": ["a", "é"]}, in_app=True, producer="billing",
        deliveries=(DeliveryState("email", "queued", 0, None, NOW),),
    )
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


def test_a_notification_crosses_unchanged() -> None:
    original = note()
    envelope = wire.decode(wire.encode("node-a", original, 65_536))
    assert envelope == wire.Envelope("node-a", original)


def test_a_notification_kept_out_of_the_inbox_stays_so() -> None:
    envelope = wire.decode(wire.encode("node-a", note(in_app=False), 65_536))
    assert envelope is not None
    assert isinstance(envelope.message, Notification)
    assert envelope.message.in_app is False


def test_a_status_change_crosses_unchanged() -> None:
    change = StatusChange("0193-n", "alice", "read", NOW, NOW + timedelta(seconds=1))
    assert wire.decode(wire.encode("b", change, 1024)) == wire.Envelope("b", change)


def test_an_inbox_change_crosses_unchanged_with_only_its_fields() -> None:
    deleted = InboxChange.deleted("alice", ("0193-a", "0193-b"))
    bulk = InboxChange("alice", InboxAction.DELETED, before=NOW, channel="billing", type="x")
    for change in (deleted, bulk):
        assert wire.decode(wire.encode("b", change, 1024)) == wire.Envelope("b", change)
    assert deleted.to_json() == {"action": "deleted", "ids": ["0193-a", "0193-b"]}
    assert bulk.to_json() == {"action": "deleted", "before": "2026-11-28T12:00:00Z",
                              "channel": "billing", "type": "x"}


def test_queue_wake_ups_are_not_the_fan_outs() -> None:
    # They have connections and a channel of their own (tidings/wakeup/redis.py).
    assert wire.decode(msgpack.packb({"v": 1, "o": "c", "k": "w"})) is None


def test_a_notification_too_large_travels_as_a_reference() -> None:
    big = note(data={"blob": "x" * 5000})
    data = wire.encode("a", big, 1024)
    assert len(data) <= 1024
    assert wire.decode(data) == wire.Envelope("a", wire.NotificationRef(big.id, "alice"))


def test_what_a_node_cannot_read_is_dropped() -> None:
    assert wire.decode(b"\xc1 not msgpack") is None
    assert wire.decode(msgpack.packb([1, 2])) is None
    assert wire.decode(msgpack.packb({"v": 99, "o": "a", "k": "w"})) is None
    assert wire.decode(msgpack.packb({"v": 1, "o": "a", "k": "?"})) is None
    assert wire.decode(msgpack.packb({"v": 1, "o": "a", "k": "s"})) is None


def test_sharded_subscriptions_name_one_slot_each_and_at_most_512_channels() -> None:
    from redis.crc import key_slot

    channels = [f"t:u:user-{index}" for index in range(3000)] + [
        f"t:u:{{same}}-{index}" for index in range(1200)]
    batches = _batches(channels, sharded=True)
    assert sorted(c for batch in batches for c in batch) == sorted(channels)
    for batch in batches:
        assert len(batch) <= MAX_CHANNELS_PER_COMMAND
        assert len({key_slot(c.encode()) for c in batch}) == 1
    plain = _batches(channels, sharded=False)
    assert [len(batch) for batch in plain] == [512] * 8 + [104]
