"""Command line of the in-app scenarios (``connections``, ``targeted``, ``fanout``,
``burst``, ``bulk``, ``recovery``, ``soak``, ``smoke``): their options, and the scenario
function each runs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

from . import scenarios
from .cli_common import add_common
from .harness import Options
from .report import Report
from .scratchdb import ADMIN_URL
from .serving import GENERATOR_CPU, one


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("connections", help="connect all, hold, count drops and heartbeats")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--hold", type=float, default=60.0)
    add_common(p)

    p = sub.add_parser("targeted", help="notifications to random connected users at a fixed rate")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument(
        "--email-rate", type=float, default=0.0,
        help="also create emails at this rate/s, sent by the server to a loopback SMTP sink",
    )
    add_common(p)

    p = sub.add_parser("fanout", help="one channel notification to every subscriber")
    p.add_argument("--subscribers", type=int, default=10_000)
    p.add_argument("--channel", default="news")
    p.add_argument("--rounds", type=int, default=3)
    add_common(p)

    p = sub.add_parser("burst", help="create as fast as the API takes them")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=64)
    add_common(p)

    p = sub.add_parser("bulk", help="POST /api/notifications/batch as fast as it takes them")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1000, help="items per request (1-1,000)")
    p.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    p.add_argument(
        "--database-url", default="",
        help="DATABASE_URL of a started Tidings (default: its SQLite file); `postgres`: a "
        "scratch database made and dropped here",
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL for the scratch database")
    add_common(p)

    p = sub.add_parser("recovery", help="drop all, create while down, reconnect and replay")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=500.0, help="creates/s while the clients are down")
    p.add_argument("--down", type=float, default=5.0, help="seconds the clients stay down")
    add_common(p)

    p = sub.add_parser("soak", help="steady rate for minutes, server RSS sampled")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--sample-every", type=float, default=10.0)
    add_common(p)

    p = sub.add_parser("smoke", help="1,000 clients, 200/s for 10 s; fails if anything is lost")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=10.0)
    add_common(p)


def runner(
    args: argparse.Namespace,
) -> tuple[Callable[[Options], Awaitable[Report]], bool]:
    """The scenario function for ``args`` and whether a started peer must keep history."""
    name = args.scenario
    if name == "connections":
        return lambda o: scenarios.connections(o, args.clients, args.hold), False
    if name == "targeted" and args.email_rate > 0:
        from . import delivery

        return lambda o: delivery.with_email_flow(
            o, args.email_rate, args.email_sink,
            lambda: scenarios.targeted(o, args.clients, args.rate, args.duration),
        ), False
    if name in ("targeted", "smoke"):
        return lambda o: scenarios.targeted(o, args.clients, args.rate, args.duration), False
    if name == "fanout":
        return lambda o: scenarios.fanout(o, args.subscribers, args.channel, args.rounds), False
    if name == "burst":
        return lambda o: scenarios.burst(o, args.clients, args.count, args.concurrency), False
    if name == "recovery":
        return lambda o: scenarios.recovery(o, args.clients, args.rate, args.down), True
    if name == "bulk":
        from .bulkbench import bulk

        return lambda o: bulk(o, args.clients, args.count, args.batch, args.concurrency), False
    if name == "soak":
        return lambda o: scenarios.soak(
            o, args.clients, args.minutes, args.rate, args.sample_every
        ), False
    raise SystemExit(f"unknown scenario {name}")


async def with_sink(args: argparse.Namespace) -> Report:
    """A targeted run whose started server sends email to a sink on the generator's core."""
    from .delivery import email_env
    from .smtpsink import start_sink

    if args.url:
        raise SystemExit("error: --email-rate needs a server started by the tool (no --url)")
    args.email_sink = start_sink(None if args.no_pin else GENERATOR_CPU)
    saved = dict(os.environ)
    os.environ.update(email_env(args.email_sink))  # the started server inherits them
    try:
        run, history = runner(args)
        return await one(args, args.target, history, run)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        args.email_sink.stop()

