"""The server part of the settings: where `tidings serve` listens, who may call it from a
browser, how it names itself, and what it logs. A group of fields that `Settings`
inherits (as `redis.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from tidings.config.values import comma_list

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class ServerSettings(BaseSettings):
    """HOST, WEBSOCKET_PORT, WEBSOCKET_CORS_ORIGIN, PUBLIC_URL, TRACK_CLICKS, WORKERS_IN_SERVE,
    MAX_BODY_BYTES, METRICS_TOKEN, LOG_LEVEL and LOG_FORMAT."""

    # Where `tidings serve` listens. "localhost" binds every loopback address the name
    # resolves to (IPv4 and IPv6), so browsers that try ::1 first still connect.
    host: str = Field("localhost", validation_alias="HOST")
    port: int = Field(3001, ge=0, le=65535, validation_alias="WEBSOCKET_PORT")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="WEBSOCKET_CORS_ORIGIN"
    )
    public_url: str = Field("http://localhost:3001", validation_alias="PUBLIC_URL")
    # Links in emails go through `{PUBLIC_URL}/c/{token}` (records the click); false:
    # straight to the stored URL.
    track_clicks: bool = Field(True, validation_alias="TRACK_CLICKS")
    workers_in_serve: bool = Field(True, validation_alias="WORKERS_IN_SERVE")
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="MAX_BODY_BYTES")
    # When set, `GET /metrics` wants `Authorization: Bearer <METRICS_TOKEN>`.
    metrics_token: str = Field("", validation_alias="METRICS_TOKEN")
    log_level: str = Field("info", validation_alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()
