"""Command line: ``python -m benchmarks <scenario> [options]``; see benchmarks/README.md."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from . import comparison, floor, scenarios
from .loopback import NotLoopbackError, parse_target
from .peers.launch import KINDS, LaunchError, start_server
from .pool import raise_nofile_limit
from .report import Report, write_json
from .scratchdb import ADMIN_URL, scratch_postgres
from .servermon import pid_listening_on
from .tokens import default_secret

SERVER_CPU = 0  # when the tool starts the server: server on core 0, load generator on core 1
GENERATOR_CPU = 1
CONNS_PER_PROCESS = 15_000  # below the 20,000 open-file limit, with room for the rest
DELIVERY_SCENARIOS = ("email", "email-latency", "claim")
MACHINE_CPUS = frozenset(os.sched_getaffinity(0))


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target and load generator")
    group.add_argument("--url", help="measure the server already running here (loopback only)")
    group.add_argument(
        "--target", choices=KINDS, default="tidings", help="server to start when --url is not given"
    )
    group.add_argument(
        "--server-pid", type=int, help="pid for RSS/CPU (default: the listener of the port)"
    )
    group.add_argument(
        "--jwt-secret",
        default=default_secret(),
        help="HS256 secret (default: $JWT_SECRET or bench-secret-for-loopback-load-tests-only)",
    )
    group.add_argument(
        "--processes",
        type=int,
        help="lean-client worker processes (default: 1 per 15k clients; 0: inline)",
    )
    group.add_argument(
        "--source-addresses",
        type=int,
        default=0,
        help="bind workers to 127.0.0.2.. (for >28k clients)",
    )
    group.add_argument(
        "--full-clients", type=int, default=0, help="python-socketio clients beside the lean ones"
    )
    group.add_argument(
        "--connect-concurrency",
        type=int,
        default=200,
        help="connects in flight, all workers together",
    )
    group.add_argument("--http", choices=("raw", "httpx"), default="raw", help="sender HTTP client")
    group.add_argument(
        "--http-connections", type=int, default=32, help="sender keep-alive connections"
    )
    group.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds to wait for stragglers before counting losses",
    )
    group.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin a started server and the generator to cores",
    )
    group.add_argument("--json", dest="json_path", help="also write the figures as JSON here")


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"give positive numbers: {text!r}")
    return values


def _names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}: {text!r}")
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Tidings load tool (loopback only)."
    )
    sub = parser.add_subparsers(dest="scenario", required=True)

    p = sub.add_parser("connections", help="connect all, hold, count drops and heartbeats")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--hold", type=float, default=60.0)
    _common(p)

    p = sub.add_parser("targeted", help="notifications to random connected users at a fixed rate")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument(
        "--email-rate", type=float, default=0.0,
        help="also create emails at this rate/s, sent by the server to a loopback SMTP sink",
    )
    _common(p)

    p = sub.add_parser("fanout", help="one channel notification to every subscriber")
    p.add_argument("--subscribers", type=int, default=10_000)
    p.add_argument("--channel", default="news")
    p.add_argument("--rounds", type=int, default=3)
    _common(p)

    p = sub.add_parser("burst", help="create as fast as the API takes them")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=64)
    _common(p)

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
    _common(p)

    p = sub.add_parser("recovery", help="drop all, create while down, reconnect and replay")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=500.0, help="creates/s while the clients are down")
    p.add_argument("--down", type=float, default=5.0, help="seconds the clients stay down")
    _common(p)

    p = sub.add_parser("soak", help="steady rate for minutes, server RSS sampled")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--sample-every", type=float, default=10.0)
    _common(p)

    p = sub.add_parser("smoke", help="1,000 clients, 200/s for 10 s; fails if anything is lost")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=10.0)
    _common(p)

    p = sub.add_parser(
        "compare", help="connections, targeted, fanout against --target and a peer; ratios"
    )
    p.add_argument("--peer", choices=("node", "pysio"), default="node")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument(
        "--rate", type=_floats, default=[1000.0], help="targeted rates, e.g. 2000,4000"
    )
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--stores", type=_names(comparison.STORES), default=["sqlite"],
        help="Tidings' stores, e.g. sqlite,postgres (PostgreSQL: a scratch database per run)",
    )
    p.add_argument(
        "--scenarios", type=_names(comparison.SCENARIOS), default=list(comparison.SCENARIOS),
        help="which of connections,targeted,fanout,recovery",
    )
    p.add_argument(
        "--down", type=float, default=5.0, help="recovery: seconds the clients stay down"
    )
    p.add_argument(
        "--recovery-rate", type=float, default=500.0, help="recovery: creates/s while down"
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make scratch databases on")
    _common(p)

    p = sub.add_parser(
        "floor", help="the seed's floor (1,000/s) and 2,000/s on both stores and a peer; goals"
    )
    p.add_argument("--peer", choices=("node", "pysio", comparison.NO_PEER), default="node")
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument(
        "--rates", type=_floats, default=list(floor.RATES),
        help="the floor's rate, then the higher ones offered (default 1000,2000)",
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    p.add_argument(
        "--stores", type=_names(comparison.STORES), default=list(floor.STORES),
        help="Tidings' stores (PostgreSQL: a scratch database per run)",
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make scratch databases on")
    _common(p)
    _delivery_parsers(sub)
    from . import manynodes_cli  # the many-node scenarios (redis-server, PostgreSQL, N nodes)

    manynodes_cli.add_parsers(sub)
    return parser


def _delivery_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url", default="",
            help="database for server and worker (default: a fresh SQLite file)",
        )
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

    p = sub.add_parser("claim", help="queue claim time with many finished rows (PostgreSQL)")
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--finished", type=int, default=1_000_000)
    p.add_argument("--due", type=int, default=300)
    p.add_argument("--limit", type=int, default=1, help="rows per claim call")
    p.add_argument("--json", dest="json_path", help="also write the figures as JSON here")


async def _delivery(args: argparse.Namespace) -> Report:
    from . import claimbench, delivery

    if args.scenario == "claim":
        return await claimbench.claim_latency(args.admin_url, args.finished, args.due, args.limit)
    config = delivery.Config(
        jwt_secret=args.jwt_secret,
        database_url=args.database_url,
        batch_size=args.batch_size,
        pin=not args.no_pin and len(os.sched_getaffinity(0)) > 1,
    )
    if args.scenario == "email":
        return await delivery.email_throughput(config, args.count, args.timeout)
    return await delivery.email_latency(config, args.rate, args.duration, args.settle)


@asynccontextmanager
async def served(
    args: argparse.Namespace, kind: str, history: bool = False, database_url: str = ""
) -> AsyncIterator[scenarios.Options]:
    """Options for a run against ``--url``, or against a server of ``kind`` started here."""
    clients = max(getattr(args, "clients", 0) or 0, getattr(args, "subscribers", 0) or 0)
    processes = (
        args.processes
        if args.processes is not None
        else max(1, math.ceil(clients / CONNS_PER_PROCESS))
    )
    options = dict(
        jwt_secret=args.jwt_secret,
        processes=processes,
        source_addresses=args.source_addresses,
        full_clients=args.full_clients,
        connect_concurrency=args.connect_concurrency,
        http=args.http,
        http_connections=args.http_connections,
        settle_s=args.settle,
    )
    if args.url and kind == args.target:
        target = parse_target(args.url)
        pid = args.server_pid or pid_listening_on(target.port)
        yield scenarios.Options(
            target=target, target_name=f"{kind} at {args.url}", server_pid=pid, **options
        )
        return
    # The machine's cores as the tool found them: after the first started server this
    # process is pinned to the generator's core, and asking again would find one core and
    # stop pinning (the next servers would then share the generator's core).
    pin = not args.no_pin and len(MACHINE_CPUS) > 1
    server = await start_server(
        kind, args.jwt_secret, cpu=SERVER_CPU if pin else None, history=history,
        extra_env={"DATABASE_URL": database_url} if database_url and kind == "tidings" else None,
    )
    try:
        if pin:
            os.sched_setaffinity(0, {GENERATOR_CPU})
        yield scenarios.Options(
            target=parse_target(server.url),
            target_name=kind,
            server_pid=server.pid,
            generator_cpus=[GENERATOR_CPU] if pin else None,
            **options,
        )
    finally:
        server.stop()


async def _one(
    args: argparse.Namespace,
    kind: str,
    history: bool,
    run: Callable[[scenarios.Options], Awaitable[Report]],
    database_url: str = "",
) -> Report:
    async with served(args, kind, history, database_url) as options:
        return await run(options)


def _runner(
    args: argparse.Namespace,
) -> tuple[Callable[[scenarios.Options], Awaitable[Report]], bool]:
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


async def _compare(args: argparse.Namespace) -> list[Report]:
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
        return await _one(args, kind, history, run, database_url)

    if args.scenario == "floor":
        return await floor.floor(plan, one)
    return await comparison.compare(plan, one)


async def _with_sink(args: argparse.Namespace) -> Report:
    """A targeted run whose started server sends email to a sink on the generator's core."""
    from .delivery import email_env
    from .smtpsink import start_sink

    if args.url:
        raise SystemExit("error: --email-rate needs a server started by the tool (no --url)")
    args.email_sink = start_sink(None if args.no_pin else GENERATOR_CPU)
    saved = dict(os.environ)
    os.environ.update(email_env(args.email_sink))  # the started server inherits them
    try:
        run, history = _runner(args)
        return await _one(args, args.target, history, run)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        args.email_sink.stop()


async def main_async(args: argparse.Namespace) -> int:
    raise_nofile_limit()
    from . import manynodes_cli

    if args.scenario in manynodes_cli.SCENARIOS:
        reports = await manynodes_cli.run(args)  # printed as they come
    elif args.scenario in DELIVERY_SCENARIOS:
        reports = [await _delivery(args)]
        print(reports[0].table())
    elif args.scenario in ("compare", "floor"):
        reports = await _compare(args)
    elif getattr(args, "email_rate", 0) > 0:
        reports = [await _with_sink(args)]
        print(reports[0].table())
    elif args.scenario == "bulk" and args.database_url == "postgres":
        run, history = _runner(args)
        async with scratch_postgres(args.admin_url, "bulk") as url:
            reports = [await _one(args, args.target, history, run, url)]
        print(reports[0].table())
    else:
        run, history = _runner(args)
        reports = [await _one(args, args.target, history, run,
                              getattr(args, "database_url", ""))]
        print(reports[0].table())
    if args.json_path:
        write_json(args.json_path, reports)
    if args.scenario == "smoke":
        figures = reports[0].figures
        if figures.get("lost", 1) or figures.get("create_errors", 1) or not figures.get("created"):
            print("smoke: FAILED (lost or failed notifications)", file=sys.stderr)
            return 1
        print("smoke: ok")
    return 0


def main() -> int:
    args = build_parser().parse_args()
    if getattr(args, "url", None):
        try:
            parse_target(args.url)
        except NotLoopbackError as exc:
            raise SystemExit(f"error: {exc}") from None
    try:
        return _run(main_async(args))
    except LaunchError as exc:
        raise SystemExit(f"error: {exc}") from None


def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # still works, just with a slower load generator
        return asyncio.run(main)
    return uvloop.run(main)


if __name__ == "__main__":
    sys.exit(main())
