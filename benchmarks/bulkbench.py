"""``bulk``: notifications created through ``POST /api/notifications/batch``, as a producer
with many at once would, to connected users; every one must arrive.

``concurrency`` batches are in flight at a time (closed loop, as ``burst``), each of
``batch`` items to random connected users. Reported: notifications stored per second (from
the first request to the last answer), the batch request's latency, create-to-receive
latency, the server's CPU per notification, and losses.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from .harness import Bench, Options, _limit_note, _per_create
from .report import Report, latency_summary
from .sender import API_PATH, Sender, random_picker

BATCH_PATH = API_PATH + "/batch"


async def _post_batch(sender: Sender, users: list[str]) -> None:
    """One batch; each item's outcome lands in ``sender.log``. Never raises."""
    log = sender.log
    now = time.time()
    keys: list[str] = []
    items: list[Any] = []
    for user in users:
        key, body = sender._body(user, now)
        keys.append(key)
        items.append(json.loads(body))
    started = time.perf_counter()
    try:
        status, payload = await sender.transport.post(
            BATCH_PATH, json.dumps({"items": items}, separators=(",", ":")).encode())
    except Exception as exc:
        log.errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += len(users)
        return
    log.http_ms.append((time.perf_counter() - started) * 1000.0)
    if status != 200:
        log.errors[f"HTTP {status}: {payload[:60].decode(errors='replace')}"] += len(users)
        return
    results = json.loads(payload)["results"]
    for key, user, result in zip(keys, users, results, strict=True):
        if result.get("status") == 201:
            log.created[key] = user
            log.ids[key] = str(result["notification"]["id"])
        else:
            log.errors[f"item {result.get('status')}: {str(result.get('error'))[:60]}"] += 1


async def bulk(options: Options, clients: int, count: int, batch: int,
               concurrency: int) -> Report:
    report = Report("bulk", options.target_name)
    async with Bench(options) as bench:
        users = await bench.connect(clients, report)
        if not users:
            report.notes.append("no client connected")
            return report
        sender = bench.sender()
        pick = random_picker(users)
        batches = iter([[pick() for _ in range(min(batch, count - start))]
                        for start in range(0, count, batch)])

        async def lane() -> None:
            for recipients in batches:
                await _post_batch(sender, recipients)

        start = bench.phase_start()
        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        sender.log.scheduled += count
        sender.log.elapsed_s += elapsed
        await bench.load_figures(report, start, elapsed)
        http = latency_summary(sender.log.http_ms)
        report.add(
            batch=batch, concurrency=concurrency, scheduled=count,
            created=len(sender.log.created), create_errors=sum(sender.log.errors.values()),
            stored_per_s=len(sender.log.created) / elapsed if elapsed else 0.0,
            batch_http_p50_ms=http["p50_ms"], batch_http_p99_ms=http["p99_ms"],
        )
        if sender.log.errors:
            report.add(create_error_kinds=dict(sender.log.errors.most_common(5)))
        _per_create(report)
        await bench.deliveries(set(sender.log.created.items()), report,
                               settle_s=max(options.settle_s, 30.0))
    _limit_note(report)
    return report
