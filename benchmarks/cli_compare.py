"""Command line of ``compare`` and ``floor`` (its preset): their options, and the runs,
each against a server started here."""

from __future__ import annotations

import argparse
from typing import Any

from . import comparison, floor, serving
from .cli_common import add_common, floats, names
from .report import Report
from .scratchdb import ADMIN_URL

SCENARIOS = ("compare", "floor")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="connections, targeted, fanout against --target and a peer; ratios"
    )
    p.add_argument("--peer", choices=("node", "pysio"), default="node")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument(
        "--rate", type=floats, default=[1000.0], help="targeted rates, e.g. 2000,4000"
    )
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--stores", type=names(comparison.STORES), default=["sqlite"],
        help="Tidings' stores, e.g. sqlite,postgres (PostgreSQL: a scratch database per run)",
    )
    p.add_argument(
        "--scenarios", type=names(comparison.SCENARIOS), default=list(comparison.SCENARIOS),
        help="which of connections,targeted,fanout,recovery",
    )
    p.add_argument(
        "--down", type=float, default=5.0, help="recovery: seconds the clients stay down"
    )
    p.add_argument(
        "--recovery-rate", type=float, default=500.0, help="recovery: creates/s while down"
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make scratch databases on")
    add_common(p)

    p = sub.add_parser(
        "floor", help="the seed's floor (1,000/s) and 2,000/s on both stores and a peer; goals"
    )
    p.add_argument("--peer", choices=("node", "pysio", comparison.NO_PEER), default="node")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument(
        "--rates", type=floats, default=list(floor.RATES),
        help="the floor's rate, then the higher ones offered (default 1000,2000)",
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    p.add_argument(
        "--stores", type=names(comparison.STORES), default=list(floor.STORES),
        help="Tidings' stores (PostgreSQL: a scratch database per run)",
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make scratch databases on")
    add_common(p)


async def run(args: argparse.Namespace) -> list[Report]:
    """``compare``, or ``floor`` (its preset)."""
    if args.url:
        raise SystemExit(f"error: {args.scenario} starts every server itself (drop --url)")
    if args.scenario == "floor":
        plan = floor.plan(args.target, args.peer, args.stores, args.rates, args.clients,
                          args.duration, args.admin_url)
    else:
        plan = comparison.Plan(
            target=args.target, peer=args.peer, stores=args.stores, rates=args.rate,
            scenarios=args.scenarios, clients=args.clients, hold_s=args.hold,
            duration_s=args.duration, rounds=args.rounds, down_s=args.down,
            recovery_rate=args.recovery_rate, admin_url=args.admin_url,
        )

    async def one(kind: str, history: bool, database_url: str,
                  run: comparison.Scenario) -> Report:
        return await serving.one(args, kind, history, run, database_url)

    if args.scenario == "floor":
        return await floor.floor(plan, one)
    return await comparison.compare(plan, one)

