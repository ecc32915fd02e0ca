"""Start a server to measure (a peer, or ``tidings serve``) on a free loopback port.

The server may be pinned to one core (``cpu``) so that it and the load generator do
not fight over the same core, as in PERF-BASELINE.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NODE_DIR = Path(__file__).parent / "node_server"
KINDS = ("tidings", "node", "pysio", "granian")


class LaunchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_node_modules() -> None:
    """``npm install`` into node_server/ on first use (node_modules is not committed)."""
    if (NODE_DIR / "node_modules" / "socket.io").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise LaunchError("npm not found: Node.js 18+ and npm are needed for the node peer")
    print("installing the node peer's packages (npm install)...", file=sys.stderr)
    subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


@dataclass
class ServerProcess:
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.workdir is not None:
            self.workdir.cleanup()


def _command(kind: str, port: int, history: bool) -> list[str]:
    if kind == "node":
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise LaunchError("node not found")
        return [node, str(NODE_DIR / "server.js")]
    if kind == "pysio":
        command = [sys.executable, "-m", "benchmarks.peers.pysio_server", "--port", str(port)]
        return command + (["--history"] if history else [])
    if kind == "tidings":
        tidings = shutil.which("tidings") or str(Path(sys.executable).with_name("tidings"))
        if not Path(tidings).exists():
            raise LaunchError("`tidings` is not installed here: pip install -e . , or give --url")
        return [tidings, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if kind == "granian":  # Tidings' app on Granian instead of uvicorn (granian_app.py)
        granian = Path(sys.executable).with_name("granian")
        if not granian.exists():
            raise LaunchError("`granian` is not installed here: pip install granian")
        return [str(granian), "--interface", "asgi", "--factory", "--loop", "uvloop",
                "--workers", "1", "--http", "1", "--backlog", "2048", "--no-access-log",
                "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port),
                "benchmarks.peers.granian_app:app"]
    raise LaunchError(f"unknown server kind {kind!r}; one of {KINDS}")


def _spawn(
    command: list[str], env: dict[str, str], cwd: str, cpu: int | None
) -> subprocess.Popen[bytes]:
    """Start the server (returns at once; the caller polls the port)."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=pin)


async def start_server(
    kind: str,
    jwt_secret: str,
    cpu: int | None = None,
    history: bool = False,
    timeout_s: float = 60.0,
    extra_env: dict[str, str] | None = None,
) -> ServerProcess:
    port = free_port()
    env = dict(os.environ, JWT_SECRET=jwt_secret, PORT=str(port), HOST="127.0.0.1")
    env.update(extra_env or {})
    env["WEBSOCKET_PORT"] = str(port)
    if history:
        env["PEER_HISTORY"] = "1"
    # Tidings writes its SQLite file into the working directory: give it a fresh one.
    workdir = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
    cwd = workdir.name
    if kind in ("pysio", "granian"):  # both import from benchmarks/
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")]
        )

    process = _spawn(_command(kind, port, history), env, cwd, cpu)
    server = ServerProcess(kind, port, process, workdir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise LaunchError(f"{kind} server exited with code {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return server
        except OSError:
            await asyncio.sleep(0.1)
    server.stop()
    raise LaunchError(f"{kind} server did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")
