"""The Redis part of the settings (docs/NODES.md): where Redis is, and how the
fan-out between nodes uses it. A group of fields that `Settings` inherits, so the whole
configuration stays one typed object."""

from __future__ import annotations

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings

from tidings.support.redis_sentinel import SentinelAddress, is_sentinel_url, parse_sentinel_url


class RedisSettings(BaseSettings):
    # redis://, rediss:// (TLS), unix://, or redis+sentinel://host:port,host:port/service
    # (`redis_sentinel.py`). Unset: one node, fan-out in process.
    redis_url: str = Field("", validation_alias="REDIS_URL")
    # The master's password (a Sentinel URL carries the Sentinels' own, if they have one).
    redis_password: str = Field("", validation_alias="REDIS_PASSWORD")
    # Channel names start with it: several deployments may share one Redis.
    redis_prefix: str = Field("tidings", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$",
                              validation_alias="REDIS_PREFIX")
    # REDIS_URL names a node of a Redis Cluster: sharded pub/sub (Redis >= 7).
    redis_cluster: bool = Field(False, validation_alias="REDIS_CLUSTER")
    # Seconds a node keeps a user's channel after the user's last socket left.
    redis_unsubscribe_after_s: float = Field(30.0, ge=0,
                                             validation_alias="REDIS_UNSUBSCRIBE_AFTER")
    # Messages read from Redis and waiting to be emitted; beyond, dropped and counted.
    redis_receive_buffer: int = Field(10_000, ge=1, validation_alias="REDIS_RECEIVE_BUFFER")
    _sentinel: SentinelAddress | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _sentinel_url_parses(self) -> RedisSettings:
        if not is_sentinel_url(self.redis_url):
            return self
        if self.redis_cluster:
            raise ValueError("REDIS_URL names Sentinels, which watch a single master: "
                             "unset REDIS_CLUSTER (a Redis Cluster has its own failover)")
        try:
            self._sentinel = parse_sentinel_url(self.redis_url)
        except ValueError as exc:
            raise ValueError(f"REDIS_URL: {exc}") from None
        return self

    def redis_sentinel(self) -> SentinelAddress | None:
        """The Sentinels REDIS_URL names (checked at start-up), or None."""
        return self._sentinel
