"""A notification's JSON is written once: the create's HTTP answer and its socket event
share it, and each still sends the very bytes it sent when it wrote its own."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from starlette.types import Message

from tidings.api import create_edge
from tidings.config.settings import Settings
from tidings.domain.delivery import DeliveryState
from tidings.domain.notification import Created, Notification
from tidings.realtime.lean import packets
from tidings.realtime.lean.server import LeanTransport
from tidings.realtime.lean.session import Session

NOW = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def note(**changes: object) -> Notification:
    values: dict[str, object] = dict(
        id="0193-n", user_id="alice", type="invoice", title="Facture é 📄", message="Ready\n",
        channel="billing", priority="high", status="pending",
        scheduled_at=None, created_at=NOW - timedelta(minutes=1), visible_at=NOW,
        delivered_at=None, read_at=None,
        data={"amount": 1e-7, "big": 1e16, "tags": ["a", "é", "\u2028", "</script>"],
              "nested": {"x": [None, True, 0.1, -3]}},
        in_app=True, producer="billing",
        deliveries=(DeliveryState("email", "queued", 0, None, NOW),),
    )
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


BEYOND_64_BITS = {"id": 2**70, "name": "é"}


class Recorder:
    """A WebSocket `send` that keeps what it is given."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send(self, message: Message) -> None:
        self.texts.append(message["text"])


async def emitted(record: Notification) -> str:
    """The text the lean transport writes to a socket for `record`."""
    transport = LeanTransport(Settings())
    recorder = Recorder()
    session = Session("e")
    session.use_websocket(recorder.send)
    transport._sockets["s"] = session
    assert await transport.send_record(["s"], "notification", record) == 1
    (text,) = recorder.texts
    return text


def test_a_record_writes_its_json_once() -> None:
    record = note()
    assert record.written_json() is None
    first = record.to_json_bytes()
    assert record.written_json() is first
    assert first == orjson.dumps(record.to_json())
    assert record.to_json_bytes() is first
    # Not a value of the record: equality, repr and replace ignore it.
    assert record == note() and "_json" not in repr(record)
    read = replace(record, status="read")
    assert orjson.loads(read.to_json_bytes())["status"] == "read"


def test_the_http_answer_is_the_records_json_as_before() -> None:
    record = note()
    answer = create_edge.created(Created(record))
    assert answer.status == 201
    assert answer.body == create_edge.encode(note().to_json())
    assert answer.body is record.to_json_bytes()


@pytest.mark.parametrize("payload", [
    note().to_json(),
    {"s": "\x00\x1f\"\\/é😀\u2028", "f": [1e-7, 1e16, 0.1, -0.0, 1.5e300], "n": None},
    {},
])
def test_a_spliced_event_is_the_event_written_whole(payload: dict[str, Any]) -> None:
    for name in ("notification", "quote\"d é"):
        assert (packets.event_with_json(name, orjson.dumps(payload))
                == packets.event(name, payload))


async def test_the_socket_event_shares_the_answers_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, alone = note(), note()
    expected_event = packets.event("notification", record.to_json())
    expected_answer = create_edge.encode(record.to_json())
    calls = 0
    original = Notification.to_json

    def counting(self: Notification) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return original(self)

    monkeypatch.setattr(Notification, "to_json", counting)
    record.to_json_bytes()  # as the creation service does for a create it answers
    assert await emitted(record) == expected_event
    assert create_edge.created(Created(record)).body == expected_answer
    assert calls == 1
    # A record nobody wrote (a channel's copy) is framed whole, and keeps nothing.
    assert await emitted(alone) == expected_event
    assert calls == 2 and alone.written_json() is None


async def test_what_orjson_refuses_keeps_each_paths_own_spelling() -> None:
    # Integers beyond 64 bits: the HTTP answer in UTF-8, the packet escaped, as before.
    record = note(data=BEYOND_64_BITS)
    with pytest.raises(TypeError):
        record.to_json_bytes()
    assert record.written_json() is None
    answer = create_edge.created(Created(record)).body
    assert answer == json.dumps(record.to_json(), ensure_ascii=False,
                                separators=(",", ":")).encode()
    assert b'"name":"\xc3\xa9"' in answer
    text = await emitted(record)
    assert text == "42" + json.dumps(["notification", record.to_json()], separators=(",", ":"))
    assert '"name":"\\u00e9"' in text


