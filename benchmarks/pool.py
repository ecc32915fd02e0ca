"""Fleets spread over worker processes, each with its own uvloop, driven from the parent.

Why processes: one Python core tops out at a few thousand connects/s and tens of
thousands of messages/s; the load generator must not be what is measured. Each worker
raises RLIMIT_NOFILE to its hard limit (one fd per connection) and may bind its
clients to its own loopback source address, so that more than ~28k ephemeral ports
exist in total.

The parent talks to each worker over a ``multiprocessing`` pipe: one JSON request, one
JSON answer, in order. Blocking pipe reads run in a dedicated thread pool so the
parent's event loop (which also runs the sender) never stalls.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .fleet import Fleet, FullFleet, LeanFleet
from .loopback import Target


@dataclass(frozen=True)
class WorkerSpec:
    kind: str  # "lean" or "full"
    http_url: str
    ws_url: str
    secret: str
    source_addr: str | None
    cpu: int | None


def raise_nofile_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _worker_main(conn: Connection, spec: WorkerSpec) -> None:
    raise_nofile_limit()
    if spec.cpu is not None:
        os.sched_setaffinity(0, {spec.cpu})
    try:
        import uvloop

        uvloop.run(_serve(conn, spec))
    except ImportError:  # still works, just slower
        asyncio.run(_serve(conn, spec))


async def _serve(conn: Connection, spec: WorkerSpec) -> None:
    fleet: Fleet
    if spec.kind == "full":
        fleet = FullFleet(spec.http_url, spec.secret)
    else:
        fleet = LeanFleet(spec.ws_url, spec.secret, spec.source_addr)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as pipe_reader:
        while True:
            try:
                request = json.loads(await loop.run_in_executor(pipe_reader, conn.recv_bytes))
            except EOFError:  # the parent went away: stop, never linger
                await fleet.close()
                return
            answer = await _handle(fleet, request)
            conn.send_bytes(json.dumps(answer).encode())
            if request["cmd"] == "close":
                return


async def _handle(fleet: Fleet, request: dict[str, Any]) -> dict[str, Any]:
    cmd = request["cmd"]
    if cmd == "connect":
        return await fleet.connect(request["users"], request["concurrency"])
    if cmd == "reconnect":
        return await fleet.reconnect(request["concurrency"])
    if cmd == "call_all":
        return await fleet.call_all(request["event"], request["payload"], request["timeout"])
    if cmd == "recover":
        return await fleet.recover(
            request["event"], request["payload"], request["concurrency"], request["timeout"]
        )
    if cmd == "drop":
        return await fleet.drop()
    if cmd == "stats":
        return fleet.stats()
    if cmd == "collect":
        receipts = fleet.receipts
        answer = {
            "records": receipts.records,
            "duplicates": receipts.duplicates,
            "unmatched": receipts.unmatched,
            "misrouted": receipts.misrouted,
            "other_events": receipts.other_events,
        }
        if request.get("reset"):
            answer = json.loads(json.dumps(answer))  # copy before the lists are cleared
            receipts.reset()
        return answer
    if cmd == "close":
        return await fleet.close()
    return {"error": f"unknown command {cmd}"}


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, spec: WorkerSpec, executor: ThreadPoolExecutor) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self.spec = spec
        self._conn, child = context.Pipe()
        self._executor = executor
        self.process = context.Process(target=_worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()
        self.users: list[str] = []

    async def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        self._conn.send_bytes(json.dumps({"cmd": cmd, **fields}).encode())
        loop = asyncio.get_running_loop()
        answer: dict[str, Any] = json.loads(
            await loop.run_in_executor(self._executor, self._conn.recv_bytes)
        )
        return answer

    def stop(self) -> None:
        self._conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2)


class InlineWorker:
    """A fleet in the caller's own event loop (``processes=0``): no child process, for
    tests that run the smoke scenario from inside their own loop."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.users: list[str] = []
        self._fleet: Fleet = (
            FullFleet(spec.http_url, spec.secret)
            if spec.kind == "full"
            else LeanFleet(spec.ws_url, spec.secret, spec.source_addr)
        )

    async def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        # Through JSON like a real worker, so both kinds answer exactly alike.
        answer: dict[str, Any] = json.loads(
            json.dumps(await _handle(self._fleet, {"cmd": cmd, **fields}))
        )
        return answer

    def stop(self) -> None:
        pass


class Pool:
    """Lean workers (the load) plus at most one full-client worker (the cross-check).

    ``processes=0`` runs one lean fleet inline, in the caller's event loop.
    """

    def __init__(
        self,
        target: Target,
        secret: str,
        processes: int,
        source_addrs: list[str],
        full_clients: int = 0,
        cpus: list[int] | None = None,
    ) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=processes + 1, thread_name_prefix="pool-pipe"
        )
        self.lean: list[Worker | InlineWorker] = []
        self.full: Worker | InlineWorker | None = None
        self.full_clients = full_clients
        if processes == 0:
            source = source_addrs[0] if source_addrs else None
            self.lean.append(
                InlineWorker(
                    WorkerSpec("lean", target.http_url, target.ws_url, secret, source, None)
                )
            )
        for i in range(processes):
            source = source_addrs[i % len(source_addrs)] if source_addrs else None
            cpu = cpus[i % len(cpus)] if cpus else None
            spec = WorkerSpec("lean", target.http_url, target.ws_url, secret, source, cpu)
            self.lean.append(Worker(spec, self.executor))
        if full_clients:
            cpu = cpus[0] if cpus else None
            spec = WorkerSpec("full", target.http_url, target.ws_url, secret, None, cpu)
            self.full = Worker(spec, self.executor) if processes else InlineWorker(spec)

    @property
    def workers(self) -> list[Worker | InlineWorker]:
        return self.lean + ([self.full] if self.full else [])

    async def connect(self, users: list[str], concurrency: int) -> list[dict[str, Any]]:
        """The last ``full_clients`` users go to the full worker, the rest round-robin."""
        split = len(users) - (self.full_clients if self.full else 0)
        lean_users, full_users = users[:split], users[split:]
        for i, worker in enumerate(self.lean):
            worker.users = lean_users[i :: len(self.lean)]
        if self.full:
            self.full.users = full_users
        per_worker = max(1, concurrency // len(self.workers))
        return await asyncio.gather(
            *(w.request("connect", users=w.users, concurrency=per_worker) for w in self.workers)
        )

    async def all(self, cmd: str, **fields: Any) -> list[dict[str, Any]]:
        return await asyncio.gather(*(w.request(cmd, **fields) for w in self.workers))

    async def stats(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for answer in await self.all("stats"):
            for key, value in answer.items():
                total[key] = total.get(key, 0) + int(value)
        return total

    async def wait_received(self, expected: int, timeout_s: float, poll: float = 0.1) -> float:
        """Poll until ``expected`` distinct receipts arrived or ``timeout_s``; return wait time."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < timeout_s:
            if (await self.stats())["received"] >= expected:
                break
            await asyncio.sleep(poll)
        return loop.time() - started

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.all("close"), timeout=30)
        except (TimeoutError, EOFError, BrokenPipeError, OSError):
            pass
        for worker in self.workers:
            worker.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
