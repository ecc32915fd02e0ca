"""APNs stand-in over HTTP/2 with TLS: checks the path, the ES256 provider token (signature
with the team's key, kid, iss, age) and the apns-* headers, and answers like APNs."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.pushfakes.server import BadRequest, FakeProvider, Reply, Seen

_PATH = re.compile(r"^/3/device/([0-9a-fA-F]+)$")


class FakeApns(FakeProvider):
    def __init__(
        self,
        public_key: ec.EllipticCurvePublicKey,
        key_id: str,
        team_id: str,
        topic: str,
        clock: Callable[[], float],
    ) -> None:
        super().__init__()
        self.public_key = public_key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.clock = clock

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(seen.body) for seen in self.seen]

    def tokens(self) -> list[str]:
        return [seen.headers["authorization"].removeprefix("bearer ") for seen in self.seen]

    def check(self, request: Seen) -> Reply | None:
        if request.http_version != "2":
            raise BadRequest("APNs speaks HTTP/2 only")
        if request.method != "POST" or not _PATH.match(request.path):
            return Reply(404, {"reason": "BadPath"})
        headers = request.headers
        auth = headers.get("authorization", "")
        if not auth.startswith("bearer "):
            return Reply(403, {"reason": "MissingProviderToken"})
        token = auth.removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"])
        except jwt.InvalidTokenError:
            return Reply(403, {"reason": "InvalidProviderToken"})
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return Reply(403, {"reason": "InvalidProviderToken"})
        if not 0 <= self.clock() - claims["iat"] < 3600:
            return Reply(403, {"reason": "ExpiredProviderToken"})
        if headers.get("apns-topic") != self.topic:
            return Reply(400, {"reason": "TopicDisallowed"})
        if headers.get("apns-push-type") != "alert":
            raise BadRequest("apns-push-type must be alert")
        if headers.get("apns-priority") not in ("5", "10"):
            return Reply(400, {"reason": "BadPriority"})
        if not headers.get("apns-expiration", "").isdigit():
            return Reply(400, {"reason": "BadExpirationDate"})
        try:
            uuid.UUID(headers.get("apns-id", ""))
        except ValueError:
            return Reply(400, {"reason": "BadMessageId"})
        if len(request.body) > 4096:
            return Reply(413, {"reason": "PayloadTooLarge"})
        payload = json.loads(request.body)
        alert = payload.get("aps", {}).get("alert", {})
        if not isinstance(alert, dict) or "title" not in alert or "body" not in alert:
            return Reply(400, {"reason": "PayloadEmpty"})
        return None

    def ok(self, request: Seen) -> Reply:
        return Reply(200, headers={"apns-id": request.headers["apns-id"]})
