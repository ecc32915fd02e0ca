"""The bounded cache with a life per entry: expiry on the injected clock, least recently
used out first, and a read that raced a drop is not stored."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from tidings.support.ttl_cache import TtlCache


def make(now: list[float], *, capacity: int = 3, ttl_s: float = 10.0) -> TtlCache[str, int]:
    registry = CollectorRegistry()
    return TtlCache(capacity=capacity, ttl_s=ttl_s, clock=lambda: now[0],
                    hits=Counter("hits", "h", registry=registry),
                    misses=Counter("misses", "m", registry=registry))


def test_an_entry_lives_its_ttl_and_no_longer() -> None:
    now = [0.0]
    cache = make(now)
    cache.put_many({"a": 1}, cache.ticket())
    now[0] = 9.9
    assert cache.get_many(["a"]) == ({"a": 1}, [])
    now[0] = 10.0
    assert cache.get_many(["a"]) == ({}, ["a"])
    assert len(cache) == 0


def test_the_least_recently_used_goes_first_beyond_capacity() -> None:
    now = [0.0]
    cache = make(now)
    cache.put_many({"a": 1, "b": 2, "c": 3}, cache.ticket())
    cache.get_many(["a"])  # a is now the most recent
    cache.put_many({"d": 4}, cache.ticket())
    assert cache.get_many(["a", "b", "c", "d"]) == ({"a": 1, "c": 3, "d": 4}, ["b"])


def test_a_read_that_raced_a_drop_is_not_stored() -> None:
    cache = make([0.0])
    ticket = cache.ticket()  # a create starts reading...
    cache.drop("a")  # ...a change commits and is dropped...
    cache.put_many({"a": 1}, ticket)  # ...the old read arrives
    assert cache.get_many(["a"]) == ({}, ["a"])
    ticket = cache.ticket()
    cache.clear()
    cache.put_many({"a": 1}, ticket)
    assert len(cache) == 0
    cache.put_many({"a": 1}, cache.ticket())
    assert len(cache) == 1


def test_hits_and_misses_are_counted() -> None:
    registry = CollectorRegistry()
    hits = Counter("hits", "h", registry=registry)
    misses = Counter("misses", "m", registry=registry)
    cache: TtlCache[str, int] = TtlCache(capacity=3, ttl_s=10.0, hits=hits, misses=misses)
    cache.put_many({"a": 1}, cache.ticket())
    cache.get_many(["a", "b", "c"])
    assert registry.get_sample_value("hits_total") == 1
    assert registry.get_sample_value("misses_total") == 2
