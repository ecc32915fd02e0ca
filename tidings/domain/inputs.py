"""What clients send, validated the same way whether it arrives over HTTP or Socket.IO."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import nh3
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tidings.domain.broadcast import broadcast_rules
from tidings.domain.catalogue import MAX_STEPS, EscalationStep
from tidings.domain.draft_rules import DRAFT_RULES
from tidings.domain.errors import ValidationFailed

# The field types, named here too (as they always were) for the code that reads inputs.
from tidings.domain.fields import IDEMPOTENCY_KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from tidings.domain.fields import MAX_DATA_DEPTH as MAX_DATA_DEPTH
from tidings.domain.fields import NAME_PATTERN as NAME_PATTERN
from tidings.domain.fields import Instant as Instant
from tidings.domain.fields import JSONObject as JSONObject
from tidings.domain.fields import LocaleTag as LocaleTag
from tidings.domain.fields import Name as Name
from tidings.domain.fields import NameOrWildcard as NameOrWildcard
from tidings.domain.fields import Text as Text
from tidings.domain.fields import UserId as UserId
from tidings.domain.fields import WholeNumber as WholeNumber
from tidings.domain.fields import ZoneName as ZoneName
from tidings.domain.fields import is_idempotency_key as is_idempotency_key
from tidings.domain.fields import is_name as is_name
from tidings.domain.fields import storable_text
from tidings.domain.model import DEFAULT_CHANNEL, WILDCARD, Medium, Priority, parse_instant

MAX_RECIPIENTS = 10_000
# The parts of a notification a producer may mark sensitive, besides `data.<key>`.
SENSITIVE_PARTS = ("title", "message", "data")
MAX_HTML_CHARS = 100 * 1024  # producer-supplied email HTML


def _sensitive_name(value: str) -> str:
    if value in SENSITIVE_PARTS or (value.startswith("data.") and len(value) > 5):
        return storable_text(value)
    raise ValueError("must be 'title', 'message', 'data' or 'data.<key>' (a key of data)")


_SENSITIVE_DOC = Field(json_schema_extra={"pattern": r"^(title|message|data|data\..+)$"})


def _utc(value: datetime) -> datetime:
    return parse_instant(value.isoformat())


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _web_url(value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http or https URL")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("must not contain spaces or control characters")
    return value


# A link a notification carries (its `url`, an action's): absolute, http or https.
WebUrl = Annotated[str, Field(
    min_length=1, max_length=2048,
    # As `_web_url` judges it: a host part, and no space or control character anywhere.
    json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\x00-\\x20\\x7F]"
                                  "[^\\x00-\\x20\\x7F]*$"}),
                   AfterValidator(_web_url)]
MAX_ACTIONS = 3


class ActionInput(_Input):
    """One of a notification's buttons: a label and where it leads."""

    label: Text = Field(..., min_length=1, max_length=100)
    url: WebUrl


class DigestInput(_Input):
    """`digest` on a create: hold email and push for the (user, key) window."""

    key: Name
    window_seconds: WholeNumber = Field(..., ge=1, le=86_400, strict=True)


class NotificationDraft(_Input):
    """The body of `POST /api/notifications`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=DRAFT_RULES)

    user_id: UserId | None = None
    user_ids: list[UserId] | None = Field(None, min_length=1, max_length=MAX_RECIPIENTS)
    type: Name
    # Required unless a template gives them (`check_content`).
    title: Text | None = Field(None, min_length=1, max_length=1000)
    message: Text | None = Field(None, max_length=20_000)
    channel: Name = DEFAULT_CHANNEL
    priority: Priority = Priority.MEDIUM
    scheduled_at: Instant | None = None
    data: JSONObject = Field(default_factory=dict)
    media: list[Medium] | None = Field(None, min_length=1, json_schema_extra={
        "uniqueItems": True})
    template: Text | None = Field(None, max_length=200)
    variables: JSONObject | None = None
    # Parts sealed at rest (encryption at rest): `title`, `message`, `data` or
    # `data.<key>` (one top-level key of `data`).
    sensitive: list[Annotated[str, AfterValidator(_sensitive_name), _SENSITIVE_DOC]] = Field(
        default_factory=list, max_length=100, json_schema_extra={"uniqueItems": True},
        description="Parts to encrypt at rest: 'title', 'message', 'data' or 'data.<key>'; "
        "needs ENCRYPTION_KEYS on the server. Clients always see plaintext.")
    digest: DigestInput | None = None
    # After it no medium carries the notification and the inbox hides it (must be in the
    # future and after `scheduled_at`: checked against the clock by `check_expiry`).
    expires_at: Instant | None = None
    url: WebUrl | None = None
    actions: list[ActionInput] | None = Field(None, max_length=MAX_ACTIONS)

    # Section 12's steps (the catalogue's rule for a step, one for creates and types);
    # `[]` names no step, and so overrides the type's escalation.
    escalation: list[EscalationStep] | None = Field(None, max_length=MAX_STEPS)
    # Section 13: one notification every user sees (admins only; in-app only).
    broadcast: StrictBool = False

    def check_broadcast(self) -> None:
        """A broadcast names no audience and goes in-app alone (`broadcast_rules`)."""
        if self.broadcast:
            broadcast_rules(self)

    def check_expiry(self, now: datetime) -> None:
        """`expires_at`, if given, lies after `now` and after `scheduled_at`."""
        if self.expires_at is None:
            return
        if self.expires_at <= now:
            raise ValidationFailed("expires_at: must be in the future", field="expires_at")
        if self.scheduled_at is not None and self.expires_at <= self.scheduled_at:
            raise ValidationFailed("expires_at: must be after scheduled_at",
                                   field="expires_at")

    @field_validator("digest")
    @classmethod
    def _digest_now(cls, value: DigestInput | None, info: ValidationInfo) -> DigestInput | None:
        # A window opens when its first delivery is held; a scheduled one is not due yet.
        if value is not None and info.data.get("scheduled_at") is not None:
            raise ValueError("digest cannot be combined with scheduled_at")
        return value
    # The producer's own HTML for the email; cleaned (`cleaned_html`) before it is kept.
    html: Text | None = Field(None, max_length=MAX_HTML_CHARS)

    def check_content(self) -> None:
        """A template, or a title and a message: not both, not neither; `html` of at most
        100 KB."""
        if self.html is not None and len(self.html.encode()) > MAX_HTML_CHARS:
            raise ValidationFailed("html: at most 100 KB", field="html")
        if self.template is not None:
            for name in ("title", "message"):
                if getattr(self, name) is not None:
                    raise ValidationFailed(f"template: give a template or {name}, not both",
                                           field="template")
            return
        for name in ("title", "message"):
            if getattr(self, name) is None:
                raise ValidationFailed(f"{name}: Field required", field=name)

    def cleaned_html(self) -> str | None:
        """`html` with scripts, handlers and unknown tags removed (nh3's safe defaults)."""
        return nh3.clean(self.html) if self.html is not None else None

    @model_validator(mode="after")
    def _one_audience(self) -> NotificationDraft:
        if self.user_id is not None and self.user_ids is not None:
            raise ValueError("give user_id or user_ids, not both")

        if self.media is not None and len(set(self.media)) != len(self.media):
            raise ValueError("media must not repeat")
        return self

    @field_validator("sensitive")
    @classmethod
    def _sensitive_fits_data(cls, names: list[str], info: ValidationInfo) -> list[str]:
        """No entry repeats or overlaps an earlier one, and a `data.<key>` names a key
        `data` has (a misspelt key would leave the real one in plaintext). The error
        names the entry: `sensitive.N`."""
        data = info.data.get("data")
        for index, name in enumerate(names):
            earlier = names[:index]
            problem = None
            if name in earlier:
                problem = f"'{name}' is given twice"
            elif name.startswith("data.") and "data" in earlier:
                problem = f"'{name}' is already covered by 'data'"
            elif name == "data" and any(n.startswith("data.") for n in earlier):
                problem = "'data' covers the data keys given before it"
            elif name.startswith("data.") and data is not None and name[5:] not in data:
                problem = f"data has no key '{name[5:]}'"
            if problem is not None:
                raise ValidationError.from_exception_data("sensitive", [InitErrorDetails(
                    type=PydanticCustomError("sensitive", problem), loc=(index,), input=name)])
        return names


class PreferenceInput(_Input):
    """One preference row; a flag left out keeps its stored value (enabled if none)."""

    channel: NameOrWildcard = WILDCARD
    notification_type: NameOrWildcard = WILDCARD
    email_enabled: StrictBool | None = None
    push_enabled: StrictBool | None = None
    in_app_enabled: StrictBool | None = None
    sms_enabled: StrictBool | None = None
    chat_enabled: StrictBool | None = None


class PreferenceBatch(_Input):
    items: list[PreferenceInput] = Field(..., min_length=1, max_length=500)


class ChannelList(_Input):
    channels: list[Any] = Field(..., min_length=1, max_length=100)


class NotificationRef(_Input):
    id: str = Field(..., min_length=1, max_length=64)


class MissedRequest(_Input):
    since: Annotated[datetime, AfterValidator(_utc)]


M = TypeVar("M", bound=BaseModel)
# Where a request part is named in a validation error's location; not part of the field.
LOCATIONS = frozenset({"body", "query", "path", "header"})


def field_of(loc: Sequence[Any]) -> str:
    """A validation error's location as the field a client knows: ("body", "user_ids", 3)
    -> "user_ids.3"; ("query", "limit") -> "limit"."""
    parts = [str(part) for part in loc if part not in LOCATIONS]
    return ".".join(parts) or (str(loc[0]) if loc else "payload")


def first_problem(errors: Sequence[Any], default_field: str) -> ValidationFailed:
    """The first of pydantic's (or FastAPI's) validation errors, as a domain error."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    field = field_of(tuple(first.get("loc", ()))) if first.get("loc") else default_field
    return ValidationFailed(f"{field}: {first.get('msg', 'invalid')}", field=field)


def parse(model: type[M], data: Any) -> M:
    """Validate a JSON object (a Socket.IO event payload) into `model`."""
    if not isinstance(data, dict):
        raise ValidationFailed("the event payload must be a JSON object", field="payload")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise first_problem(exc.errors(), "payload") from exc
