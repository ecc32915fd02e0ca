"""What each benchmark does, step by step, and which figures it reports.

Every scenario is bounded: a fixed number of clients and notifications, a fixed
duration, and a settle time after which whatever has not arrived counts as lost.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from .harness import Bench, Options, _limit_note, _per_create, iso_now
from .report import Report
from .sender import random_picker


async def connections(options: Options, clients: int, hold_s: float) -> Report:
    report = Report("connections", options.target_name)
    async with Bench(options) as bench:
        await bench.connect(clients, report)
        before = await bench.pool.stats()
        start = bench.phase_start()
        await asyncio.sleep(hold_s)
        after = await bench.pool.stats()
        await bench.load_figures(report, start, hold_s)
        report.add(
            hold_s=hold_s,
            still_connected=after["connected"],
            drops=after["drops"] - before["drops"],
            heartbeats_answered=after["pings"] - before["pings"],
        )
    _limit_note(report)
    return report


async def targeted(options: Options, clients: int, rate: float, duration_s: float) -> Report:
    report = Report("targeted", options.target_name)
    async with Bench(options) as bench:
        users = await bench.connect(clients, report)
        if not users:
            report.notes.append("no client connected")
            return report
        sender = bench.sender()
        start = bench.phase_start()
        started = time.perf_counter()
        log = await sender.run_rate(rate, duration_s, random_picker(users))
        await bench.load_figures(report, start, time.perf_counter() - started)
        report.add(offered_rate_per_s=rate)
        bench.sender_figures(log, report)
        _per_create(report)
        await bench.deliveries(set(log.created.items()), report)
    _limit_note(report)
    return report


async def fanout(options: Options, subscribers: int, channel: str, rounds: int) -> Report:
    report = Report("fanout", options.target_name)
    async with Bench(options) as bench:
        users = await bench.connect(subscribers, report)
        answers = await bench.pool.all(
            "call_all",
            event="subscribe",
            payload={"channels": [channel]},
            timeout=options.ack_timeout_s,
        )
        report.add(
            subscribed=sum(a["ok"] for a in answers),
            subscribe_failed=sum(a["failed"] for a in answers),
            subscribe_s=max(a["elapsed_s"] for a in answers),
        )
        last_ms: list[float] = []
        lost = 0
        for _ in range(rounds):
            sender = bench.sender()
            await sender.create(None, channel=channel)
            if not sender.log.created:
                report.add(create_error_kinds=dict(sender.log.errors))
                break
            key = next(iter(sender.log.created))
            round_report = Report("fanout-round", options.target_name)
            await bench.deliveries({(key, u) for u in users}, round_report)
            last_ms.append(round_report.figures["latency_max_ms"])
            lost += round_report.figures["lost"]
            answer = sender.log.answers[0] if sender.log.answers else None
            report.add(api_count=answer.get("count") if isinstance(answer, dict) else None)
            for name in ("latency_p50_ms", "latency_p99_ms"):
                report.add(**{name: round_report.figures[name]})
            await asyncio.sleep(0.5)
        report.add(
            rounds=len(last_ms),
            lost=lost,
            last_receipt_median_ms=statistics.median(last_ms) if last_ms else float("nan"),
            last_receipt_each_ms=[round(v, 1) for v in last_ms],
        )
    _limit_note(report)
    return report


async def burst(options: Options, clients: int, count: int, concurrency: int) -> Report:
    report = Report("burst", options.target_name)
    async with Bench(options) as bench:
        users = await bench.connect(clients, report)
        if not users:
            report.notes.append("no client connected")
            return report
        sender = bench.sender()
        start = bench.phase_start()
        started = time.perf_counter()
        log = await sender.run_burst(count, concurrency, random_picker(users))
        await bench.load_figures(report, start, time.perf_counter() - started)
        report.add(concurrency=concurrency)
        bench.sender_figures(log, report)
        _per_create(report)
        await bench.deliveries(
            set(log.created.items()), report, settle_s=max(options.settle_s, 30.0)
        )
    _limit_note(report)
    return report


async def recovery(options: Options, clients: int, rate: float, down_s: float) -> Report:
    """All drop at once; notifications are created while they are down; all come back."""
    report = Report("recovery", options.target_name)
    async with Bench(options) as bench:
        users = await bench.connect(clients, report)
        if not users:
            report.notes.append("no client connected")
            return report
        since = iso_now()
        await bench.pool.all("drop")
        await bench.pool.all("collect", reset=True)  # anything before the drop is not counted
        sender = bench.sender()
        log = await sender.run_rate(rate, down_s, random_picker(users))
        bench.sender_figures(log, report)
        started = time.perf_counter()
        answers = await bench.pool.all(
            "recover",
            event="requestMissedNotifications",
            payload={"since": since},
            concurrency=max(1, options.connect_concurrency // len(bench.pool.workers)),
            timeout=options.ack_timeout_s,
        )
        expected = set(log.created.items())
        await bench.pool.wait_received(len(expected), options.settle_s)
        caught_up_s = time.perf_counter() - started
        errors: dict[str, int] = {}
        for answer in answers:
            for name, n in answer["errors"].items():
                errors[name] = errors.get(name, 0) + n
        report.add(
            down_s=down_s,
            reconnected_s=max(a["reconnected_s"] for a in answers),
            replay_acks_ok=sum(a["ok"] for a in answers),
            replay_failed=sum(a["failed"] for a in answers),
            replayed_count_sum=sum(a["count_sum"] for a in answers),
            acks_done_s=max(a["elapsed_s"] for a in answers),
            caught_up_s=caught_up_s,
        )
        if errors:
            report.add(recover_errors=errors)
        await bench.deliveries(expected, report, settle_s=0.0)
        report.notes.append(
            "latency here counts from creation, i.e. includes the time clients were down"
        )
    _limit_note(report)
    return report


async def soak(
    options: Options, clients: int, minutes: float, rate: float, sample_every_s: float = 10.0
) -> Report:
    report = Report("soak", options.target_name)
    async with Bench(options) as bench:
        users = await bench.connect(clients, report)
        if not users:
            report.notes.append("no client connected")
            return report
        stop = asyncio.Event()
        sampler = (
            asyncio.create_task(bench.monitor.sample_every(sample_every_s, stop))
            if bench.monitor
            else None
        )
        first = len(bench.monitor.samples) if bench.monitor else 0
        start = bench.phase_start()
        started = time.perf_counter()
        log = await bench.sender().run_rate(rate, minutes * 60.0, random_picker(users))
        await bench.load_figures(report, start, time.perf_counter() - started)
        stop.set()
        if sampler:
            await sampler
        report.add(offered_rate_per_s=rate)
        bench.sender_figures(log, report)
        await bench.deliveries(set(log.created.items()), report)
        if bench.monitor:
            series = [s.rss_bytes / 2**20 for s in bench.monitor.samples[first:]]
            report.add(
                rss_start_mb=series[0],
                rss_end_mb=series[-1],
                rss_max_mb=max(series),
                rss_growth_mb=series[-1] - series[0],
                rss_series_mb=[round(v, 1) for v in series],
            )
    _limit_note(report)
    return report
