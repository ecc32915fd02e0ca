"""A browser's push service stand-in: decrypts each message with the subscription's private
key and auth secret (RFC 8291) and checks the VAPID signature and audience (RFC 8292)."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.pushfakes.server import BadRequest, FakeProvider, Reply, Seen


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Browser:
    """A subscription as a browser makes one: a P-256 key pair and a 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)


class FakePushService(FakeProvider):
    def __init__(self, vapid_public_key: str) -> None:
        super().__init__()
        self.vapid_public_key = vapid_public_key
        self.origin = ""  # set once serving
        self.browsers: dict[str, Browser] = {}  # subscription path -> its browser
        self.plaintexts: list[bytes] = []

    def subscribe(self, name: str) -> tuple[str, Browser]:
        browser = self.browsers.setdefault(f"/push/{name}", Browser.new())
        return f"{self.origin}/push/{name}", browser

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(plaintext) for plaintext in self.plaintexts]

    def check(self, request: Seen) -> Reply | None:
        browser = self.browsers.get(request.path)
        if request.method != "POST" or browser is None:
            return Reply(404, b"no such subscription")
        headers = request.headers
        if headers.get("content-encoding") != "aes128gcm":
            raise BadRequest("Content-Encoding must be aes128gcm")
        if not headers.get("ttl", "").isdigit():
            raise BadRequest("TTL header is required")
        if headers.get("urgency") not in ("very-low", "low", "normal", "high"):
            raise BadRequest("Urgency must be very-low, low, normal or high")
        self._check_vapid(headers.get("authorization", ""))
        if len(request.body) > 4096:
            return Reply(413, b"payload too large")
        try:
            plaintext = http_ece.decrypt(
                request.body,
                private_key=browser.private_key,
                auth_secret=browser.auth_secret,
                version="aes128gcm",
            )
        except Exception as exc:  # any decryption failure is the sender's fault
            raise BadRequest(f"cannot decrypt: {exc!r}") from exc
        self.plaintexts.append(plaintext)
        return None

    def ok(self, request: Seen) -> Reply:
        return Reply(201, headers={"location": f"{self.origin}/m/{len(self.plaintexts)}"})

    def _check_vapid(self, authorization: str) -> None:
        scheme, _, params = authorization.partition(" ")
        parts = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if scheme.lower() != "vapid" or "t" not in parts or "k" not in parts:
            raise BadRequest("Authorization must be 'vapid t=..., k=...'")
        if parts["k"] != self.vapid_public_key:
            raise BadRequest("k is not the application server key the browser subscribed with")
        raw = base64.urlsafe_b64decode(parts["k"] + "=" * (-len(parts["k"]) % 4))
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        try:
            claims = jwt.decode(
                parts["t"],
                key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise BadRequest(f"VAPID token: {exc}") from exc
        if claims["exp"] > time.time() + 24 * 3600:
            raise BadRequest("VAPID exp is more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise BadRequest("VAPID sub must be mailto: or https:")
