"""Many users' live inboxes over Socket.IO, spread over several nodes, each waiting for one
notification: the topic part of the product-model walk-through in docs/WALKTHROUGHS.md.

    .venv/bin/python scripts/topic_listeners.py http://127.0.0.1:3001 http://127.0.0.1:3002 \\
        [--users 1000] [--prefix fan-] [--wait 60]

User n (`fan-0000`, `fan-0001`, ...) connects to node n modulo the number of nodes given,
with a token signed as `tidings token` signs one (JWT_SECRET, else the checkout's
`.tidings-secret`: run it where the nodes run), through the Python client's live inbox
(`tidings.client.Inbox`, which needs the `client` extra; `--dev` includes it). It prints one
line once every socket is connected, then waits (at most `--wait` seconds) for one
notification on each socket and prints how many users received one, per node. It exits 0
only when every user received exactly one notification, their own copy (their user id,
an id no other user got).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter

from tidings.client import Inbox
from tidings.client.models import Notification
from tidings.config.settings import load_settings
from tidings.services.tokens import TokenService

# Sockets started at once: a batch connects before the next starts, so a busy machine
# does not time out a thousand handshakes in flight together.
BATCH = 100
TOKEN_TTL_S = 3600


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", nargs="+", help="each node's base URL")
    parser.add_argument("--users", type=int, default=1000, help="how many users (1000)")
    parser.add_argument("--prefix", default="fan-", help="user ids' prefix (fan-)")
    parser.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for the sockets, then for the notification (60)")
    return parser.parse_args(argv)


async def _connect(inboxes: dict[str, Inbox], wait_s: float) -> None:
    users = list(inboxes)
    for start in range(0, len(users), BATCH):
        batch = [inboxes[user] for user in users[start:start + BATCH]]
        for inbox in batch:
            inbox.start()
        async with asyncio.timeout(wait_s):
            await asyncio.gather(*(inbox.wait_connected() for inbox in batch))


async def _first(inbox: Inbox) -> Notification:
    return await anext(inbox)


async def _listen(args: argparse.Namespace) -> int:
    tokens = TokenService(load_settings())
    users = [f"{args.prefix}{n:04d}" for n in range(args.users)]
    node_of = {user: args.nodes[n % len(args.nodes)] for n, user in enumerate(users)}
    inboxes = {user: Inbox(node_of[user], tokens.mint(user, (), TOKEN_TTL_S)) for user in users}
    try:
        try:
            await _connect(inboxes, args.wait)
        except TimeoutError:
            connected = sum(inbox.connected for inbox in inboxes.values())
            print(f"only {connected} of {len(users)} sockets connected within {args.wait} s",
                  flush=True)
            return 1
        per_node = Counter(node_of.values())
        print(f"{len(users)} sockets connected: "
              + ", ".join(f"{count} to {node}" for node, count in per_node.items())
              + "; waiting for a notification", flush=True)
        waits = {user: asyncio.ensure_future(_first(inbox)) for user, inbox in inboxes.items()}
        await asyncio.wait(waits.values(), timeout=args.wait)
        got = {user: task.result() for user, task in waits.items()
               if task.done() and not task.cancelled() and task.exception() is None}
        for task in waits.values():
            task.cancel()
    finally:
        await asyncio.gather(*(inbox.aclose() for inbox in inboxes.values()))
    return _report(users, node_of, got)


def _report(users: list[str], node_of: dict[str, str], got: dict[str, Notification]) -> int:
    own = {user: note for user, note in got.items() if note.user_id == user}
    ids = Counter(note.id for note in own.values())
    own = {user: note for user, note in own.items() if ids[note.id] == 1}
    titles = sorted({note.title for note in own.values()})
    through = Counter(node_of[user] for user in own)
    print(f"{len(own)} of {len(users)} users received {' / '.join(map(repr, titles)) or '-'}: "
          + ", ".join(f"{count} through {node}" for node, count in through.items())
          + ", each their own copy", flush=True)
    missing = [user for user in users if user not in own]
    if missing:
        print(f"no copy of their own for {len(missing)} users: {', '.join(missing[:10])}"
              + (", ..." if len(missing) > 10 else ""), flush=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_listen(_arguments(argv)))


if __name__ == "__main__":
    sys.exit(main())
