"""A loopback SMTP server that accepts every message, in a process of its own.

It counts messages as they arrive (a shared counter the parent polls) and keeps, for each
one whose subject ends in ``@<epoch seconds>``, the time from that instant to the moment
its DATA was accepted: create-to-provider latency, when the sender puts the scheduled
create time in the title. Being a separate process, its parsing does not cost the
measured worker any CPU.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .peers.launch import free_port

_STAMP = re.compile(rb"^Subject: [^\r\n]*@(\d+\.\d+)\s*$", re.MULTILINE)


class _Handler:
    def __init__(self, counter: Any, latencies: list[float]) -> None:
        self.counter = counter
        self.latencies = latencies

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        match = _STAMP.search(envelope.original_content or envelope.content or b"")
        if match:
            self.latencies.append((now - float(match.group(1))) * 1000.0)
        self.counter.value += 1
        return "250 OK"


def _main(port: int, counter: Any, conn: Connection, cpu: int | None) -> None:
    from aiosmtpd.controller import Controller

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    latencies: list[float] = []
    controller = Controller(
        _Handler(counter, latencies), hostname="127.0.0.1", port=port, ready_timeout=10
    )
    controller.start()
    conn.send("ready")
    conn.recv()  # "stop"
    controller.stop()
    conn.send(latencies)


@dataclass
class SmtpSink:
    """A running sink: ``port``, ``received`` so far, ``stop()`` for the latencies (ms)."""

    port: int
    process: Any  # a spawn-context Process
    counter: Any
    conn: Connection

    @property
    def received(self) -> int:
        return int(self.counter.value)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def stop(self) -> list[float]:
        latencies: list[float] = []
        if self.process.is_alive():
            self.conn.send("stop")
            if self.conn.poll(30):
                latencies = self.conn.recv()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        return latencies


def start_sink(cpu: int | None = None) -> SmtpSink:
    """Start the sink on a free loopback port; returns once it accepts connections."""
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0, lock=False)  # only the sink writes it
    parent, child = context.Pipe()
    port = free_port()
    process = context.Process(target=_main, args=(port, counter, child, cpu), daemon=True)
    process.start()
    if not parent.poll(30) or parent.recv() != "ready":
        process.terminate()
        raise RuntimeError("the SMTP sink did not start")
    return SmtpSink(port, process, counter, parent)
