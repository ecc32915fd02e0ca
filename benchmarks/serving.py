"""Where a run's load goes: the server at ``--url``, or one started here and pinned to its
core, with the load generator pinned to the other."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from .harness import Options
from .loopback import parse_target
from .peers.launch import start_server
from .report import Report
from .servermon import pid_listening_on

SERVER_CPU = 0  # when the tool starts the server: server on core 0, load generator on core 1
GENERATOR_CPU = 1
CONNS_PER_PROCESS = 15_000  # below the 20,000 open-file limit, with room for the rest
MACHINE_CPUS = frozenset(os.sched_getaffinity(0))


@asynccontextmanager
async def served(
    args: argparse.Namespace, kind: str, history: bool = False, database_url: str = ""
) -> AsyncIterator[Options]:
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
        yield Options(
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
        yield Options(
            target=parse_target(server.url),
            target_name=kind,
            server_pid=server.pid,
            generator_cpus=[GENERATOR_CPU] if pin else None,
            **options,
        )
    finally:
        server.stop()


async def one(
    args: argparse.Namespace,
    kind: str,
    history: bool,
    run: Callable[[Options], Awaitable[Report]],
    database_url: str = "",
) -> Report:
    async with served(args, kind, history, database_url) as options:
        return await run(options)
