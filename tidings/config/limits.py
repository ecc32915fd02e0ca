"""The limits part of the settings (docs/CONFIGURATION.md, "Limits"): the rates, the
socket cap, and who may join which channel. A group of fields that `Settings` inherits
(as `redis.py`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from tidings.config.values import (
    ChannelRuleSpec,
    check_rate,
    decode_rules_json,
    read_rules_file,
)


class LimitSettings(BaseSettings):
    """RATE_LIMIT_CREATES, RATE_LIMIT_SOCKET_EVENTS, MAX_SOCKETS_PER_USER, CHANNEL_RULES
    and CHANNEL_RULES_FILE."""

    # A rate is "N/second|minute|hour|day" ("0" or empty: off); the create rate counts
    # notifications (each recipient's copy), and its default stops a runaway producer
    # while one create to the most `user_ids` allowed (10,000) still fits in a window.
    rate_limit_creates: str = Field("10000/second", validation_alias="RATE_LIMIT_CREATES")
    rate_limit_socket_events: str = Field(
        "50/second", validation_alias="RATE_LIMIT_SOCKET_EVENTS"
    )
    max_sockets_per_user: int = Field(50, ge=0, validation_alias="MAX_SOCKETS_PER_USER")
    # Who may join which channel: JSON in CHANNEL_RULES, or a JSON file named by
    # CHANNEL_RULES_FILE (one or the other). None: every valid name is public.
    channel_rules: Annotated[list[ChannelRuleSpec] | None, NoDecode] = Field(
        None, validation_alias="CHANNEL_RULES"
    )
    channel_rules_file: str = Field("", validation_alias="CHANNEL_RULES_FILE")

    @field_validator("rate_limit_creates", "rate_limit_socket_events")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        return check_rate(value)

    @field_validator("channel_rules", mode="before")
    @classmethod
    def _decode_rules(cls, value: object) -> object:
        if isinstance(value, str):
            return decode_rules_json(value, "CHANNEL_RULES") if value.strip() else None
        return value

    @model_validator(mode="after")
    def _load_rules_file(self) -> LimitSettings:
        if self.channel_rules_file:
            if self.channel_rules is not None:
                raise ValueError("set CHANNEL_RULES or CHANNEL_RULES_FILE, not both")
            self.channel_rules = read_rules_file(self.channel_rules_file)
        if not self.channel_rules:
            self.channel_rules = None  # an empty list configures nothing
        return self
