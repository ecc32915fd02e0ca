"""The lighter per-connection structures of the lean transport behave like the ones they
replace: a room's members as one sid or a set, uvicorn's message queue and write flag."""

from __future__ import annotations

import asyncio

from tidings.realtime.lean.rooms import Rooms
from tidings.realtime.lean.uvicorn_ws import Flag, MessageQueue


def test_a_room_goes_from_one_sid_to_a_set_and_back() -> None:
    rooms = Rooms()
    for sid in ("s1", "s2", "s3"):
        rooms.join(sid, "user:a")
    assert sorted(rooms.members("user:a")) == ["s1", "s2", "s3"]
    rooms.leave_all("s2")
    assert sorted(rooms.members("user:a")) == ["s1", "s3"]
    rooms.leave_all("s1")
    assert rooms.members("user:a") == ["s3"]
    rooms.join("s4", "user:a")
    assert sorted(rooms.members("user:a")) == ["s3", "s4"]
    rooms.leave_all("s3")
    rooms.leave_all("s4")
    assert rooms.members("user:a") == [] and len(rooms) == 0


async def test_message_queue_hands_items_over_in_order() -> None:
    queue = MessageQueue()
    assert queue.empty() and queue.qsize() == 0
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await reader == "a"
    assert queue.qsize() == 1 and await queue.get() == "b" and queue.empty()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    queue.put_nowait("c")  # nobody waits: it stays for the next reader
    assert await queue.get() == "c"


async def test_flag_wakes_every_waiter_when_set() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True]
    assert flag.is_set() and await flag.wait()
    flag.clear()
    assert not flag.is_set()
