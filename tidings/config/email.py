"""The email part of the settings: an SMTP server, or an HTTP email service, and the
sender's address (docs/DELIVERY.md). A group of fields that `Settings` inherits (as
`redis.py`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class EmailSettings(BaseSettings):
    """SMTP_*, EMAIL_FROM, EMAIL_SERVICE_URL and EMAIL_SERVICE_API_KEY."""

    smtp_host: str = Field("", validation_alias="SMTP_HOST")
    smtp_port: int = Field(587, validation_alias="SMTP_PORT")
    smtp_username: str = Field("", validation_alias="SMTP_USERNAME")
    smtp_password: str = Field("", validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(True, validation_alias="SMTP_STARTTLS")
    smtp_tls: bool = Field(False, validation_alias="SMTP_TLS")  # implicit TLS (port 465)
    email_from: str = Field("tidings@localhost", validation_alias="EMAIL_FROM")
    email_service_url: str = Field("", validation_alias="EMAIL_SERVICE_URL")
    email_service_api_key: str = Field("", validation_alias="EMAIL_SERVICE_API_KEY")
