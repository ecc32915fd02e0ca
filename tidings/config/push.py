"""The push part of the settings: the providers (FCM, APNs, Web Push, or an HTTP push
service) and how many devices a user may have (docs/PUSH.md). A group of fields that
`Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from tidings.config.values import comma_list


class PushSettings(BaseSettings):
    """PUSH_SERVICE_*, FCM_*, APNS_*, VAPID_*, WEBPUSH_ALLOWED_HOSTS and
    MAX_DEVICES_PER_USER."""

    push_service_url: str = Field("", validation_alias="PUSH_SERVICE_URL")
    push_service_api_key: str = Field("", validation_alias="PUSH_SERVICE_API_KEY")

    fcm_credentials_file: str = Field("", validation_alias="FCM_CREDENTIALS_FILE")
    fcm_endpoint: str = Field("https://fcm.googleapis.com", validation_alias="FCM_ENDPOINT")
    apns_key_file: str = Field("", validation_alias="APNS_KEY_FILE")
    apns_key_id: str = Field("", validation_alias="APNS_KEY_ID")
    apns_team_id: str = Field("", validation_alias="APNS_TEAM_ID")
    apns_topic: str = Field("", validation_alias="APNS_TOPIC")
    apns_endpoint: str = Field("https://api.push.apple.com", validation_alias="APNS_ENDPOINT")
    vapid_private_key: str = Field("", validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str = Field("", validation_alias="VAPID_SUBJECT")
    webpush_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="WEBPUSH_ALLOWED_HOSTS"
    )
    # Enabled push devices a user may have: registering one more disables the least
    # recently registered, and a push goes to at most this many (docs/PUSH.md).
    max_devices_per_user: int = Field(20, ge=1, le=1000, validation_alias="MAX_DEVICES_PER_USER")

    @field_validator("webpush_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        return comma_list(value)
