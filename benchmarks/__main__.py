"""Command line: ``python -m benchmarks <scenario> [options]``; see benchmarks/README.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from . import cli_compare, cli_delivery, cli_inapp, httpserver
from .loopback import NotLoopbackError, parse_target
from .peers.launch import LaunchError
from .pool import raise_nofile_limit
from .report import write_json
from .scratchdb import scratch_postgres
from .serving import one


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Tidings load tool (loopback only)."
    )
    sub = parser.add_subparsers(dest="scenario", required=True)
    cli_inapp.add_parsers(sub)
    cli_compare.add_parsers(sub)
    cli_delivery.add_parsers(sub)
    httpserver.add_parsers(sub)
    from . import manynodes_cli  # the many-node scenarios (redis-server, PostgreSQL, N nodes)

    manynodes_cli.add_parsers(sub)
    return parser


async def main_async(args: argparse.Namespace) -> int:
    raise_nofile_limit()
    from . import manynodes_cli

    if args.scenario in manynodes_cli.SCENARIOS:
        reports = await manynodes_cli.run(args)  # printed as they come
    elif args.scenario in cli_delivery.SCENARIOS:
        reports = [await cli_delivery.run(args)]
        print(reports[0].table())
    elif args.scenario in cli_compare.SCENARIOS:
        reports = await cli_compare.run(args)
    elif args.scenario in httpserver.SCENARIOS:
        reports = await httpserver.run(args)  # printed as they come
    elif getattr(args, "email_rate", 0) > 0:
        reports = [await cli_inapp.with_sink(args)]
        print(reports[0].table())
    elif args.scenario == "bulk" and args.database_url == "postgres":
        run, history = cli_inapp.runner(args)
        async with scratch_postgres(args.admin_url, "bulk") as url:
            reports = [await one(args, args.target, history, run, url)]
        print(reports[0].table())
    else:
        run, history = cli_inapp.runner(args)
        reports = [await one(args, args.target, history, run,
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
