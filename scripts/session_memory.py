"""What one connected socket costs the server in Python memory, by allocation site.

Runs a Tidings server in this process (SQLite in a temporary directory), takes a
tracemalloc snapshot, lets `python -m benchmarks connections` connect N lean clients from
a process of its own, takes a second snapshot once all N are connected, and prints the
difference grouped by traceback, in bytes per connection.

    .venv/bin/python scripts/session_memory.py --clients 2000 --frames 12 --top 25
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import tracemalloc

import uvicorn

from tidings.app import create_app
from tidings.config.settings import Settings
from tidings.container import build_services
from tidings.jobs.migrate import upgrade
from tidings.server import bind_sockets, uvicorn_config

SECRET = "bench-secret-for-loopback-load-tests-only"


async def measure(url: str, clients: int, frames: int, top: int) -> None:
    settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET,  # type: ignore[call-arg]
                        host="127.0.0.1", port=0, log_level="warning")
    services = build_services(settings)
    config = uvicorn_config(settings)
    config.app = create_app(settings, services)
    server = uvicorn.Server(config)
    sockets = bind_sockets("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
        await asyncio.sleep(0.05)
    registry = services.metrics.registry

    def connected() -> float:
        return registry.get_sample_value("tidings_connections") or 0.0

    gc.collect()
    tracemalloc.start(frames)
    before = tracemalloc.take_snapshot()
    hold = 30 + clients / 100  # long enough for the snapshot under tracemalloc's overhead
    bench = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks", "connections", "--url", f"http://127.0.0.1:{port}",
        "--clients", str(clients), "--hold", str(hold), "--jwt-secret", SECRET, "--no-pin",
        stdout=asyncio.subprocess.DEVNULL, env={**os.environ, "JWT_SECRET": SECRET},
    )
    while connected() < clients and bench.returncode is None:  # noqa: ASYNC110 - polled gauge
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # the last handshakes' garbage goes
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    n = connected()
    stats = after.compare_to(before, "traceback")
    total = sum(stat.size_diff for stat in stats)
    print(f"{n:.0f} connected: {total / n:.0f} bytes per connection traced in all")
    print("\nby the innermost frame in tidings, uvicorn, websockets or starlette:")
    for where, size in _by_owner(stats)[:top]:
        print(f"{size / n:8.0f} B/conn  {where}")
    for stat in stats[:top]:
        print(f"\n{stat.size_diff / n:8.0f} B/conn {stat.count_diff / n:6.2f} blocks/conn")
        for line in stat.traceback.format()[-2 * min(frames, 6):]:
            print("   ", line)
    await bench.wait()
    server.should_exit = True
    await task


OWNERS = ("/tidings/", "/uvicorn/", "/websockets/", "/starlette/")


def _by_owner(stats: list[tracemalloc.StatisticDiff]) -> list[tuple[str, int]]:
    """Sizes summed by the deepest frame that is ours or the server's (not asyncio's)."""
    sums: dict[str, int] = {}
    for stat in stats:
        where = "elsewhere"
        for frame in reversed(stat.traceback):
            if any(owner in frame.filename for owner in OWNERS):
                path = frame.filename
                if "site-packages/" in path:
                    path = path.split("site-packages/")[-1]
                else:
                    path = "tidings/" + path.split("/tidings/", 1)[-1]
                where = f"{path}:{frame.lineno}"
                break
        sums[where] = sums.get(where, 0) + stat.size_diff
    return sorted(sums.items(), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="tidings-mem-")
    try:
        url = f"sqlite+aiosqlite:///{folder}/tidings.db"
        upgrade(url)
        asyncio.run(measure(url, args.clients, args.frames, args.top))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
