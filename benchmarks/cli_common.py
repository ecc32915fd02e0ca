"""Command line pieces shared by the scenario families: the target and load-generator
options of every in-app scenario, and the parsers of comma-separated lists."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .peers.launch import KINDS
from .tokens import default_secret


def add_common(parser: argparse.ArgumentParser) -> None:
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


def floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"give positive numbers: {text!r}")
    return values


def names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}: {text!r}")
        return names

    return parse
