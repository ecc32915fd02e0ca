"""How REDIS_URL names Sentinels, and the errors an operator sees at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tidings.config.settings import Settings, describe
from tidings.support.redis_sentinel import SentinelAddress, is_sentinel_url, parse_sentinel_url


def test_sentinels_service_database_and_the_sentinels_password() -> None:
    address = parse_sentinel_url(
        "redis+sentinel://:s%40cret@10.0.0.1:26380,sentinel-b,[::1]:26381/cache/2")
    assert address == SentinelAddress(
        (("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381)), "cache", 2,
        None, "s@cret")


def test_the_database_defaults_to_zero_and_a_user_may_be_named() -> None:
    address = parse_sentinel_url("redis+sentinel://ops:pw@127.0.0.1:26379/mymaster")
    assert (address.db, address.username, address.password) == (0, "ops", "pw")


def test_only_the_sentinel_scheme_is_recognised() -> None:
    assert is_sentinel_url("redis+sentinel://h:1/m")
    assert is_sentinel_url("REDIS+SENTINEL://h:1/m")
    assert not is_sentinel_url("redis://h:6379/0")
    assert not is_sentinel_url("unix:///run/redis.sock")


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://127.0.0.1:26379", "name the service"),
    ("redis+sentinel://127.0.0.1:26379/a/1/x", "name the service"),
    ("redis+sentinel://127.0.0.1:26379/mymaster/zero", "must be a number"),
    ("redis+sentinel:///mymaster", "name at least one Sentinel"),
    ("redis+sentinel://127.0.0.1:port/mymaster", "is not host:port"),
    ("redis+sentinel://:26379/mymaster", "is not host:port"),
    ("rediss+sentinel://127.0.0.1:26379/mymaster", "is not supported"),
])
def test_a_malformed_sentinel_url_is_refused_naming_the_variable(url: str,
                                                                  message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(REDIS_URL=url)  # type: ignore[call-arg]
    text = describe(caught.value)
    assert "REDIS_URL: " in text
    assert message in text


def test_sentinels_and_a_cluster_exclude_each_other() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(REDIS_URL="redis+sentinel://h:1/m", REDIS_CLUSTER=True)  # type: ignore[call-arg]
    assert "unset REDIS_CLUSTER" in describe(caught.value)


def test_the_settings_keep_the_parsed_address() -> None:
    settings = Settings(REDIS_URL="redis+sentinel://h:1/m")  # type: ignore[call-arg]
    assert settings.redis_sentinel() == SentinelAddress((("h", 1),), "m")
    assert Settings(REDIS_URL="redis://h:6379/0").redis_sentinel() is None  # type: ignore[call-arg]
