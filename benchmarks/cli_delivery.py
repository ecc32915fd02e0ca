"""Command line of the delivery scenarios (``email``, ``email-latency``, ``claim``,
``create-cost``, ``step-cost``): their options, and the run, which starts its own server,
worker and SMTP sink (``--database-url postgres``: on a scratch PostgreSQL database)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .report import Report
from .tokens import default_secret

SCENARIOS = ("email", "email-latency", "claim", "create-cost", "step-cost")


def add_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url", default="",
            help="database for server and worker (default: a fresh SQLite file; "
            "`postgres`: a scratch PostgreSQL database on --admin-url)",
        )
        p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
        p.add_argument("--batch-size", type=int, default=100, help="NOTIFICATION_BATCH_SIZE")
        p.add_argument(
            "--jwt-secret", default=default_secret(), help="HS256 secret of the started server"
        )
        p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
        p.add_argument("--json", dest="json_path", help="also write the figures as JSON here")

    p = sub.add_parser("email", help="one `tidings worker` draining queued emails to a sink")
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many s")
    common(p)

    p = sub.add_parser("email-latency", help="create-to-SMTP latency at a fixed create rate")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=30.0)
    common(p)

    p = sub.add_parser("create-cost", help="server CPU per create, with or without escalation")
    p.add_argument("--variant", choices=("plain", "escalated"), default="plain")
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--duration", type=float, default=20.0)
    common(p)

    p = sub.add_parser("step-cost", help="worker CPU per escalation step against plain email")
    p.add_argument("--variant", choices=("email", "escalated"), default="escalated")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this many s")
    common(p)

    p = sub.add_parser("claim", help="queue claim time with many finished rows (PostgreSQL)")
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--finished", type=int, default=1_000_000)
    p.add_argument("--due", type=int, default=300)
    p.add_argument("--limit", type=int, default=1, help="rows per claim call")
    p.add_argument("--json", dest="json_path", help="also write the figures as JSON here")


async def run(args: argparse.Namespace) -> Report:
    from . import claimbench
    from .scratchdb import scratch_postgres

    if args.scenario == "claim":
        return await claimbench.claim_latency(args.admin_url, args.finished, args.due, args.limit)
    if args.database_url == "postgres":
        async with scratch_postgres(args.admin_url, "delivery") as url:
            return await _on(args, url)
    return await _on(args, args.database_url)


async def _on(args: argparse.Namespace, database_url: str) -> Report:
    from . import delivery, deliverystack, escbench

    config = deliverystack.Config(
        jwt_secret=args.jwt_secret,
        database_url=database_url,
        batch_size=args.batch_size,
        pin=not args.no_pin and len(os.sched_getaffinity(0)) > 1,
    )
    if args.scenario == "create-cost":
        return await escbench.create_cost(config, args.variant, args.rate, args.duration)
    if args.scenario == "step-cost":
        return await escbench.step_cost(config, args.variant, args.count, args.timeout)
    if args.scenario == "email":
        return await delivery.email_throughput(config, args.count, args.timeout)
    return await delivery.email_latency(config, args.rate, args.duration, args.settle)

