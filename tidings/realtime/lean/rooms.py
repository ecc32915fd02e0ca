"""Room membership: which sockets are in which room, in both directions.

The reverse index (socket -> rooms) exists so that a disconnect removes the socket from
exactly its rooms instead of scanning every room; most sockets are in one room (their
user's), so it is kept as a tuple, the smallest container that does the job. For the same
reason a room of one socket (most users have one) is kept as that sid alone, and becomes a
set when a second socket joins.
"""

from __future__ import annotations


class Rooms:
    __slots__ = ("_by_socket", "_members")

    def __init__(self) -> None:
        self._members: dict[str, str | set[str]] = {}
        self._by_socket: dict[str, tuple[str, ...]] = {}

    def join(self, sid: str, room: str) -> None:
        joined = self._by_socket.get(sid, ())
        if room in joined:
            return
        members = self._members.get(room)
        if members is None:
            self._members[room] = sid
        elif isinstance(members, str):
            self._members[room] = {members, sid}
        else:
            members.add(sid)
        self._by_socket[sid] = (*joined, room)

    def members(self, room: str) -> list[str]:
        members = self._members.get(room)
        if members is None:
            return []
        return [members] if isinstance(members, str) else list(members)

    def leave_all(self, sid: str) -> None:
        """Forget the socket everywhere; empty rooms are dropped so they cost nothing."""
        for room in self._by_socket.pop(sid, ()):
            members = self._members.get(room)
            if members is None:
                continue
            if isinstance(members, str):
                if members == sid:
                    del self._members[room]
                continue
            members.discard(sid)
            if len(members) == 1:  # a set always holds two or more
                self._members[room] = next(iter(members))

    def rooms_of(self, sid: str) -> tuple[str, ...]:
        return self._by_socket.get(sid, ())

    def __len__(self) -> int:
        return len(self._members)
