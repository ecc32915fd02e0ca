"""FCM HTTP v1 stand-in: Google's OAuth2 token endpoint (JWT-bearer grant signed by the
service account's key) and `messages:send` (Bearer token, message shape, string data)."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.pushfakes.server import BadRequest, FakeProvider, Reply, Seen

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# The assertion names Google's token endpoint as its audience wherever it is POSTed.
AUDIENCE = "https://oauth2.googleapis.com/token"
ALLOWED_MESSAGE_KEYS = {"token", "notification", "data", "android", "apns", "webpush"}


class FakeFcm(FakeProvider):
    def __init__(self, public_key: rsa.RSAPublicKey, project_id: str, client_email: str):
        super().__init__()
        self.public_key = public_key
        self.project_id = project_id
        self.client_email = client_email
        self.issued: list[str] = []
        self.token_replies: list[Reply] = []  # scripted answers of the token endpoint
        self._numbers = itertools.count(1)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [seen.json()["message"] for seen in self.seen if seen.path.endswith(":send")]

    def check(self, request: Seen) -> Reply | None:
        if request.method != "POST":
            raise BadRequest("only POST is served")
        if request.path == "/token":
            return self._token(request)
        if request.path != f"/v1/projects/{self.project_id}/messages:send":
            return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        if request.headers.get("authorization") not in {f"Bearer {t}" for t in self.issued}:
            return Reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        _check_message(request.json())
        return None

    def ok(self, request: Seen) -> Reply:
        name = f"projects/{self.project_id}/messages/{next(self._numbers)}"
        return Reply(200, {"name": name})

    def _token(self, request: Seen) -> Reply:
        if self.token_replies:
            return self.token_replies.pop(0)
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise BadRequest("the token request must be a form")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != GRANT:
            raise BadRequest(f"grant_type must be {GRANT}")
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidTokenError as exc:
            raise BadRequest(f"assertion: {exc}") from exc
        if claims["iss"] != self.client_email or SCOPE not in claims.get("scope", "").split():
            raise BadRequest("assertion names the wrong account or scope")
        token = f"ya29.fake-{len(self.issued) + 1}"
        self.issued.append(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})


def _check_message(document: Any) -> None:
    message = document.get("message") if isinstance(document, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("token"), str):
        raise BadRequest("message.token is required")
    if set(message) - ALLOWED_MESSAGE_KEYS:
        raise BadRequest(f"unknown message fields {sorted(set(message) - ALLOWED_MESSAGE_KEYS)}")
    notification = message.get("notification", {})
    if set(notification) - {"title", "body", "image"}:
        raise BadRequest("unknown notification fields")
    data = message.get("data", {})
    if not all(isinstance(v, str) for v in data.values()):
        raise BadRequest("message.data values must be strings")
    android = message.get("android", {})
    if android.get("priority") not in (None, "high", "normal"):
        raise BadRequest("android.priority must be high or normal")
    ttl = android.get("ttl", "0s")
    if not (ttl.endswith("s") and ttl[:-1].isdigit()):
        raise BadRequest("android.ttl must be a duration such as '3.5s'")
