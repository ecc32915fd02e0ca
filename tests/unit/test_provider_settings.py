"""The SMS and failover settings: what is configured, the default order, and the start-up
errors naming the variable."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tidings.config.settings import Settings, describe


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, JWT_SECRET="x" * 32, **values)  # type: ignore[call-arg]


def test_the_default_order_is_every_configured_provider_in_the_names_order() -> None:
    both = settings(SMTP_HOST="mail.test", EMAIL_SERVICE_URL="https://mail.test/send",
                    TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t", TWILIO_FROM="+15005550006",
                    SMS_SERVICE_URL="https://sms.test/send")
    assert both.email_order() == ["smtp", "http"] and both.sms_order() == ["twilio", "http"]
    assert settings().email_order() == [] and settings().sms_order() == []
    named = settings(SMS_SERVICE_URL="https://sms.test/send", TWILIO_ACCOUNT_SID="AC1",
                     TWILIO_AUTH_TOKEN="t", TWILIO_FROM="+1", SMS_PROVIDERS="http, twilio")
    assert named.sms_order() == ["http", "twilio"]
    assert named.provider_breaker_failures == 5 and named.provider_breaker_cooldown_s == 30


@pytest.mark.parametrize(("values", "message"), [
    ({"TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN is required"),
    ({"TWILIO_AUTH_TOKEN": "t", "TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_FROM is required"),
    ({"SMS_SERVICE_URL": "sms.test/send"}, "SMS_SERVICE_URL must be an http(s) URL"),
    ({"TWILIO_ENDPOINT": "http://127.0.0.1:9/x"}, "TWILIO_ENDPOINT is an origin"),
    ({"SMS_PROVIDERS": "twilio"}, "SMS_PROVIDERS: provider 'twilio' is named but not"),
    ({"SMTP_HOST": "m", "EMAIL_PROVIDERS": "smtp,pigeon"},
     "EMAIL_PROVIDERS: unknown provider 'pigeon'"),
    ({"SMTP_HOST": "m", "EMAIL_PROVIDERS": "smtp,smtp"}, "a provider is named twice"),
    ({"PROVIDER_BREAKER_FAILURES": "0"}, "PROVIDER_BREAKER_FAILURES"),
])
def test_a_wrong_setting_stops_start_up_naming_it(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(**values)
    assert message in describe(caught.value)
