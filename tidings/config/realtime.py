"""The realtime part of the settings: which Socket.IO server serves `/socket.io/` and the
bounds of its sessions. A group of fields that `Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from tidings.config.values import comma_list


class RealtimeSettings(BaseSettings):
    """REALTIME_TRANSPORT, WS_PER_MESSAGE_DEFLATE, MAX_EVENT_BYTES, CONNECT_TIMEOUT,
    MAX_POLL_PACKETS and TRUSTED_PROXIES."""

    # Which Socket.IO server implementation serves `/socket.io/`: the project's own lean
    # one (`tidings/realtime/lean/`: half the memory per connection, faster connects), or
    # the python-socketio reference. Both pass the same contract tests.
    realtime_transport: Literal["lean", "python-socketio"] = Field(
        "lean", validation_alias="REALTIME_TRANSPORT"
    )
    # Not in the contract: operational knobs with safe defaults.
    ws_per_message_deflate: bool = Field(False, validation_alias="WS_PER_MESSAGE_DEFLATE")
    max_event_bytes: int = Field(65_536, ge=1024, validation_alias="MAX_EVENT_BYTES")
    # Seconds a Socket.IO session may stay open without connecting namespace `/` (with its
    # token): a client that opens sessions and never authenticates does not keep them.
    connect_timeout_s: float = Field(5.0, gt=0, validation_alias="CONNECT_TIMEOUT")
    max_poll_packets: int = Field(256, ge=1, validation_alias="MAX_POLL_PACKETS")
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-Host/-Proto the
    # Socket.IO same-origin check believes; from anyone else those headers are ignored.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="TRUSTED_PROXIES"
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return comma_list(value)
