"""Prometheus metrics, on a registry of the application's own (several apps, one process:
tests build many, and none of them share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

QUEUED_MEDIA = ("email", "push", "sms", "webhook")
LOOPS = ("worker", "scheduler", "maintenance")  # the background loops (`support.loops`)
CACHES = ("preferences",)  # the in-process caches (`support.ttl_cache`)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "tidings_connections", "Socket.IO connections open on this node",
            registry=self.registry,
        )
        self.notifications_created = Counter(
            "tidings_notifications_created", "Notifications stored (one per recipient)",
            registry=self.registry,
        )
        self.in_app_deliveries = Counter(
            "tidings_in_app_deliveries", "Notification events emitted to sockets",
            registry=self.registry,
        )
        self.create_to_emit = Histogram(
            "tidings_create_to_emit_seconds",
            "From a notification's creation (or due time) to its emit on this node",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.disconnects = Counter(
            "tidings_socket_disconnects", "Socket.IO connections closed (either side)",
            registry=self.registry,
        )
        self.client_errors = Counter(
            "tidings_socket_errors", "Client events answered with an error",
            ["code"], registry=self.registry,
        )
        # Alert rules read the error rate and "database unavailable" (503) from this.
        self.http_responses = Counter(
            "tidings_http_responses", "HTTP responses sent, by status code",
            ["code"], registry=self.registry,
        )
        self._responses_by_status: dict[int, Counter] = {}
        self.deliveries = Counter(
            "tidings_deliveries", "Delivery attempts by medium and outcome "
            "(sent, transient, permanent, gone; skipped when there was nothing to try)",
            ["medium", "outcome"], registry=self.registry,
        )
        # Each provider's answers, where a medium has several to fail over between (email:
        # smtp, http; sms: twilio, http); `provider` is empty for the others.
        self.delivery_attempts = Counter(
            "tidings_delivery_attempts", "Answers of providers to delivery attempts, by "
            "medium, provider and outcome (one attempt that fails over counts once per "
            "provider tried)",
            ["medium", "provider", "outcome"], registry=self.registry,
        )
        self.dead_letters = Counter(
            "tidings_dead_letters", "Deliveries given up (dead letters), by medium",
            ["medium"], registry=self.registry,
        )
        self.queue_depth = Gauge(
            "tidings_queue_depth", "Email, push and webhook deliveries waiting or in flight",
            ["medium"], registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "tidings_delivery_seconds",
            "From a delivery's creation to the provider accepting it, by medium",
            ["medium"], buckets=DELIVERY_BUCKETS, registry=self.registry,
        )
        # The fan-out between nodes (REDIS_URL); on a single node they stay at zero.
        self.redis_up = Gauge(
            "tidings_redis_up", "1 while this node's subscriber connections to Redis are up",
            registry=self.registry,
        )
        self.fanout_received = Counter(
            "tidings_fanout_received", "Messages this node's Redis subscribers read, by "
            "channel kind (user: a user's channel, control: wake-ups and invalidations)",
            ["channel"], registry=self.registry,
        )
        self.fanout_published = Counter(
            "tidings_fanout_published", "Messages this node published to Redis",
            registry=self.registry,
        )
        self.fanout_publish_skipped = Counter(
            "tidings_fanout_publish_skipped",
            "Messages given up on: Redis failed, timed out or its breaker was open, and "
            "the backlog of messages to publish again was full",
            registry=self.registry,
        )
        self.fanout_dropped = Counter(
            "tidings_fanout_dropped",
            "Messages read from Redis and dropped: receive buffer full, or undecodable",
            registry=self.registry,
        )
        # Every background loop (`support.loops.Loop`), by its name.
        self.loop_passes = Counter(
            "tidings_loop_passes", "Passes of a background loop, failed ones included",
            ["loop"], registry=self.registry,
        )
        self.loop_errors = Counter(
            "tidings_loop_errors", "Passes of a background loop that failed (each is "
            "logged, then the loop waits and goes on)",
            ["loop"], registry=self.registry,
        )
        # The in-process caches of what the database holds (`support/ttl_cache.py`), by
        # cache: a miss is a read of the database.
        self.cache_hits = Counter(
            "tidings_cache_hits", "Lookups answered by an in-process cache, by cache",
            ["cache"], registry=self.registry,
        )
        self.cache_misses = Counter(
            "tidings_cache_misses", "Lookups an in-process cache could not answer (read "
            "from the database), by cache",
            ["cache"], registry=self.registry,
        )
        # Series that alerts compare over time exist from the start, at zero.
        for channel in ("user", "control"):
            self.fanout_received.labels(channel=channel)
        for cache in CACHES:
            self.cache_hits.labels(cache=cache)
            self.cache_misses.labels(cache=cache)
        for medium in QUEUED_MEDIA:
            self.dead_letters.labels(medium=medium)
            self.queue_depth.labels(medium=medium)
        for loop in LOOPS:
            self.loop_passes.labels(loop=loop)
            self.loop_errors.labels(loop=loop)

    def count_response(self, status: int) -> None:
        """Count one HTTP response (on the path of every request: one dict lookup once
        the status code has been seen)."""
        child = self._responses_by_status.get(status)
        if child is None:
            child = self._responses_by_status[status] = self.http_responses.labels(
                code=str(status)
            )
        child.inc()


    def render(self) -> bytes:
        return generate_latest(self.registry)
