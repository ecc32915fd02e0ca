"""The internal HTTP push service stand-in: checks the bearer key, the Idempotency-Key and
the documented JSON body."""

from __future__ import annotations

from tests.pushfakes.server import BadRequest, FakeProvider, Reply, Seen

FIELDS = {"device", "notification_id", "title", "body", "data", "priority", "ttl",
          "idempotency_key"}


class FakePushGateway(FakeProvider):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def check(self, request: Seen) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": "bad key"})
        body = request.json()
        if set(body) != FIELDS:
            raise BadRequest(f"fields {sorted(body)}")
        if request.headers.get("idempotency-key") != body["idempotency_key"]:
            raise BadRequest("Idempotency-Key must match idempotency_key")
        device = body["device"]
        if device["platform"] == "webpush":
            if set(device["subscription"]["keys"]) != {"p256dh", "auth"}:
                raise BadRequest("subscription keys")
        elif not isinstance(device.get("token"), str):
            raise BadRequest("device.token")
        return None

    def ok(self, request: Seen) -> Reply:
        return Reply(202, {"id": f"gw-{len(self.seen)}"})
