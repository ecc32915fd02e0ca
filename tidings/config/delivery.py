"""The delivery part of the settings: the queue's policy (retries, batches, leases, the
hourly limit), the in-app scheduler's pace, and which targets senders may reach. A group
of fields that `Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode


class DeliverySettings(BaseSettings):
    """MAX_RETRY_ATTEMPTS, RETRY_DELAYS, NOTIFICATION_BATCH_SIZE, THROTTLE_PER_HOUR,
    DELIVERY_LEASE_SECONDS, SCHEDULER_INTERVAL and ALLOW_PRIVATE_TARGETS."""

    max_retry_attempts: int = Field(4, ge=0, validation_alias="MAX_RETRY_ATTEMPTS")
    retry_delays_ms: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1000, 5000, 30000, 300000], validation_alias="RETRY_DELAYS"
    )
    notification_batch_size: int = Field(
        100, ge=1, le=10000, validation_alias="NOTIFICATION_BATCH_SIZE"
    )
    throttle_per_hour: int = Field(20, ge=0, validation_alias="THROTTLE_PER_HOUR")
    delivery_lease_seconds: float = Field(30, gt=0, validation_alias="DELIVERY_LEASE_SECONDS")
    scheduler_interval_s: float = Field(1.0, gt=0, validation_alias="SCHEDULER_INTERVAL")
    allow_private_targets: bool = Field(False, validation_alias="ALLOW_PRIVATE_TARGETS")

    @field_validator("retry_delays_ms", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value
