"""A lean Engine.IO v4 / Socket.IO v5 server of the project's own (`REALTIME_TRANSPORT=lean`).

Why: python-socketio costs ~41 KB, several tasks and timers per connection and a task per
recipient of every emit (docs: PERF-BASELINE.md). This package speaks the same protocol to
the same official clients (long-polling, WebSocket, and the upgrade from one to the other)
with one `__slots__` session per connection, no task per connection beyond the one the ASGI
server runs for a WebSocket, and one timer loop for every heartbeat.

Modules, one job each: `packets` (wire format), `session` (one session's state and
outgoing packets), `heartbeat` (ping/pong for all sessions), `engine` (Engine.IO sessions),
`polling` and `websocket` (the two transports), `cors`, `rooms`, and `server` (the ASGI
entry and the `SocketTransport` with the Socket.IO layer).
"""

from tidings.realtime.lean.server import LeanTransport

__all__ = ["LeanTransport"]
