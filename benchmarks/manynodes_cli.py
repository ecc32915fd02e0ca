"""Command line of the many-node scenarios (``nodes``, ``redis-cost``, ``redis-connect``,
``resubscribe``): each starts its own redis-server, PostgreSQL database and servers on
loopback, and stops them (by PID) at the end."""

from __future__ import annotations

import argparse
from typing import Any

from .report import Report
from .stack import DEFAULT_ADMIN_URL
from .tokens import default_secret

SCENARIOS = ("nodes", "redis-cost", "redis-connect", "resubscribe")


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(c < 1 or c > 8 for c in counts):
        raise argparse.ArgumentTypeError("node counts between 1 and 8, e.g. 1,2,4")
    return counts


def add_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--admin-url", default=DEFAULT_ADMIN_URL,
                       help="PostgreSQL to create the scratch database on (dropped after)")
        p.add_argument("--jwt-secret", default=default_secret(), help="HS256 secret")
        p.add_argument("--json", dest="json_path", help="also write the figures as JSON here")

    p = sub.add_parser("nodes", help="1, 2, 4 nodes on one Redis at a fixed total rate: CPU "
                                     "per node (tidings, or pysio with AsyncRedisManager)")
    p.add_argument("--nodes", type=_counts, default=[1, 2, 4], help="node counts, e.g. 1,2,4")
    p.add_argument("--target", choices=("tidings", "pysio"), default="tidings")
    p.add_argument("--clients", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200.0, help="creates/s, all nodes together")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=10.0)
    common(p)

    p = sub.add_parser("redis-cost", help="Redis CPU (INFO cpu) for one channel notification "
                                          "to many subscribers on 2 nodes")
    p.add_argument("--subscribers", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--settle", type=float, default=30.0)
    common(p)

    p = sub.add_parser("redis-connect", help="connect latency, node with Redis vs without")
    p.add_argument("--clients", type=int, default=2000, help="connects to each node")
    common(p)

    p = sub.add_parser("resubscribe", help="RedisFanout holding N users: time to resubscribe "
                                           "them all after a Redis restart")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many s")
    common(p)


async def run(args: argparse.Namespace) -> list[Report]:
    from . import nodes, rediscost, resubscribe

    if args.scenario == "nodes":
        return await nodes.scaling(args.target, args.nodes, args.jwt_secret, args.clients,
                                   args.rate, args.duration, args.settle, args.admin_url)
    if args.scenario == "redis-cost":
        report = await rediscost.channel_cost(args.jwt_secret, args.subscribers, args.rounds,
                                              args.settle, args.admin_url)
    elif args.scenario == "redis-connect":
        report = await rediscost.connect_latency(args.jwt_secret, args.clients, args.admin_url)
    else:
        report = await resubscribe.resubscribe(args.users, args.rounds, args.timeout,
                                               args.admin_url)
    print(report.table(), flush=True)
    return [report]
