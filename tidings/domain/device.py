"""A push device: an FCM or APNs token or a Web Push subscription, owned by one user.

What identifies a device to its provider (the token, or the subscription's endpoint) is
its address; one address belongs to one user at a time, so registering it again moves it
(a phone that changes hands, a browser profile that logs in as someone else). The checks
of a registration that need no network live here; the endpoint's host is checked by the
service (it needs DNS).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tidings.domain.addresses import TARGET_URL_PATTERN
from tidings.domain.errors import ValidationFailed
from tidings.domain.fields import Text, UserId
from tidings.domain.model import isoformat


class Platform(StrEnum):
    FCM = "fcm"
    APNS = "apns"
    WEBPUSH = "webpush"


@dataclass(frozen=True, slots=True)
class Device:
    """An active device as a sender needs it: where to reach it on its platform."""

    id: str
    platform: Platform
    token: str | None = None  # FCM registration token, APNs device token
    endpoint: str | None = None  # Web Push subscription endpoint
    p256dh: str | None = None  # Web Push keys (base64url)
    auth: str | None = None


MAX_TOKEN_LENGTH = 4096
MAX_ENDPOINT_LENGTH = 2048
P256DH_BYTES = 65  # an uncompressed P-256 point: 0x04 || X || Y
AUTH_BYTES = 16
# Provider tokens are printable ASCII without spaces (FCM: letters, digits, ":-_";
# APNs: hex); anything else is a client bug, refused before it reaches a provider.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_B64URL = re.compile(r"[A-Za-z0-9_\-]+={0,2}")
_TOKEN_DOC = Field(json_schema_extra={"pattern": "^[\\x21-\\x7e]+$"})


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str
    user_id: str
    platform: Platform
    address: str  # the token, or the Web Push endpoint
    p256dh: str | None
    auth: str | None
    created_at: datetime
    disabled_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform.value,
            "created_at": isoformat(self.created_at),
            "disabled_at": isoformat(self.disabled_at),
        }

    def target(self) -> Device:
        """The record as a push sender takes it."""
        if self.platform is Platform.WEBPUSH:
            return Device(self.id, self.platform, endpoint=self.address,
                          p256dh=self.p256dh, auth=self.auth)
        return Device(self.id, self.platform, token=self.address)


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A registration, checked: stored as is, or moved onto the device with its address."""

    id: str
    user_id: str
    platform: Platform
    address: str
    p256dh: str | None = None
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class Registered:
    device: DeviceRecord
    created: bool  # False: the address was known and has been moved / re-enabled


def b64url_bytes(text: str) -> bytes:
    """Strict base64url (padding optional, as browsers leave it off); ValueError if not."""
    if not _B64URL.fullmatch(text):
        raise ValueError("must be base64url")
    bare = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except binascii.Error as exc:
        raise ValueError("must be base64url") from exc


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _p256dh(value: str) -> str:
    raw = b64url_bytes(value)
    if len(raw) != P256DH_BYTES or raw[0] != 4:
        raise ValueError(f"must be base64url of an uncompressed P-256 point ({P256DH_BYTES} "
                         "bytes starting with 0x04)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise ValueError("is not a point on the P-256 curve") from exc
    return b64url(raw)


def _auth(value: str) -> str:
    raw = b64url_bytes(value)
    if len(raw) != AUTH_BYTES:
        raise ValueError(f"must be base64url of {AUTH_BYTES} bytes")
    return b64url(raw)


def _token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError("must be printable ASCII without spaces")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriptionKeys(_Input):
    # What base64url of the bytes looks like (the first byte of the point is 0x04); that the
    # point is on the curve is more than a pattern can say.
    p256dh: Annotated[str, Field(max_length=200, pattern=r"^B[A-P][A-Za-z0-9_\-]{85}=?$"),
                      AfterValidator(_p256dh)]
    auth: Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9_\-]{22}(==)?$"),
                    AfterValidator(_auth)]


class Subscription(_Input):
    """A browser's `PushSubscription.toJSON()` (its `expirationTime`, if sent, is ignored)."""

    # (The pattern twice: pydantic leaves a constraint on a validated type out of the
    # document.)
    endpoint: Annotated[Text, Field(min_length=1, max_length=MAX_ENDPOINT_LENGTH,
                                    pattern=TARGET_URL_PATTERN,
                                    json_schema_extra={"pattern": TARGET_URL_PATTERN})]
    keys: SubscriptionKeys
    expirationTime: float | None = None


# `address` for the OpenAPI document: a token for FCM and APNs, a subscription for Web
# Push, never the other one (null stands for left out).
_ONE_ADDRESS: dict[str, Any] = {"oneOf": [
    {"properties": {"platform": {"enum": [Platform.FCM.value, Platform.APNS.value]},
                    "token": {"type": "string"}, "subscription": {"type": "null"}},
     "required": ["platform", "token"]},
    {"properties": {"platform": {"const": Platform.WEBPUSH.value},
                    "subscription": {"type": "object"}, "token": {"type": "null"}},
     "required": ["platform", "subscription"]},
]}


class DeviceInput(_Input):
    """The body of `POST /api/devices`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_ADDRESS)

    platform: Platform
    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH),
                     AfterValidator(_token), _TOKEN_DOC] | None = None
    subscription: Subscription | None = None
    user_id: UserId | None = None

    def address(self) -> str:
        """The token or endpoint the platform needs; `ValidationFailed` naming the field
        that is missing or does not belong."""
        if self.platform is Platform.WEBPUSH:
            if self.token is not None:
                raise ValidationFailed("webpush takes 'subscription', not 'token'",
                                       field="token")
            if self.subscription is None:
                raise ValidationFailed("webpush needs 'subscription'", field="subscription")
            return self.subscription.endpoint
        if self.subscription is not None:
            raise ValidationFailed(f"{self.platform.value} takes 'token', not 'subscription'",
                                   field="subscription")
        if self.token is None:
            raise ValidationFailed(f"{self.platform.value} needs 'token'", field="token")
        return self.token
