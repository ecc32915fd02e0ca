"""The smoke scenario as a function, for the service's own test suite.

    result = await benchmarks.smoke.run(
        "http://127.0.0.1:3001", "secret", clients=200, rate=100, duration=3
    )
    assert result.lost == 0 and result.created == result.expected

It is the ``targeted`` scenario, small: connect ``clients`` users (``u0``..), create
``rate``/s notifications for random connected ones during ``duration`` seconds, and
count what came back within ``settle`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import scenarios
from .harness import Options
from .loopback import parse_target
from .pool import raise_nofile_limit
from .report import Report
from .servermon import pid_listening_on


@dataclass(frozen=True)
class Result:
    created: int  # answered 201 by the API
    expected: int  # receipts expected (one per created notification)
    received: int  # distinct ones the clients got
    lost: int
    create_errors: int
    connect_failed: int
    latency_p99_ms: float
    report: Report  # every figure, for printing on failure

    @property
    def ok(self) -> bool:
        return (
            self.created > 0
            and self.lost == 0
            and self.create_errors == 0
            and self.connect_failed == 0
        )


async def run(
    base_url: str,
    jwt_secret: str,
    clients: int = 1000,
    rate: float = 200.0,
    duration: float = 10.0,
    *,
    processes: int = 1,
    settle: float = 10.0,
    server_pid: int | None = None,
) -> Result:
    """Run against an already running server on loopback.

    ``processes=0`` keeps the clients in the caller's event loop (no child process);
    then the caller's open-file limit must allow ``clients`` sockets.
    """
    target = parse_target(base_url)
    if processes == 0:
        raise_nofile_limit()
    options = Options(
        target=target,
        target_name=base_url,
        jwt_secret=jwt_secret,
        processes=processes,
        settle_s=settle,
        server_pid=server_pid or pid_listening_on(target.port),
    )
    report = await scenarios.targeted(options, clients, rate, duration)
    figures = report.figures
    return Result(
        created=int(figures.get("created", 0)),
        expected=int(figures.get("expected", 0)),
        received=int(figures.get("received", 0)),
        lost=int(figures.get("lost", 0)),
        create_errors=int(figures.get("create_errors", 0)),
        connect_failed=int(figures.get("connect_failed", 0)),
        latency_p99_ms=float(figures.get("latency_p99_ms", float("nan"))),
        report=report,
    )
