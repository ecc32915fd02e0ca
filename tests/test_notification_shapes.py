"""The three descriptions of a notification agree: the domain record's JSON
(`Notification.to_json`, the one place the answer is written), the API schema the OpenAPI
document publishes (`api/schemas.py`), and the Python client's model
(`tidings/client/models.py`, which imports nothing of the server). The same fields, the
same optionality (which may be null), the same JSON types; a field added to one and not
the others fails here. `tests/test_openapi_answers.py` holds real answers to the schema."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from tidings.api.schemas import DeliveryStateOut, NotificationOut
from tidings.client import models as client
from tidings.domain.delivery import DeliveryState
from tidings.domain.notification import Notification

# A field's description: its JSON types ("any" for any), and whether it may be null.
Shape = dict[str, tuple[frozenset[str], bool]]

JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number",
                               bool: "boolean", datetime: "string", dict: "object",
                               list: "array", tuple: "array"}

# What the client leaves in `raw` (its model ignores fields it does not name, so that an
# older client reads a newer server's answers) or reads more leniently than the server
# writes. A new difference fails until it is listed here, with its reason.
CLIENT_UNMODELLED: dict[str, set[str]] = {}
CLIENT_NULLABLE = {"Delivery": {"updated_at"}}  # read as None when absent


def _types(annotation: Any) -> tuple[frozenset[str], bool]:
    """A Python annotation as JSON types, and whether it may be null."""
    if annotation is Any:
        return frozenset({"any"}), True
    if annotation is type(None):
        return frozenset(), True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_types(arg) for arg in typing.get_args(annotation)]
        return frozenset().union(*(kinds for kinds, _ in parts)), any(n for _, n in parts)
    base = typing.get_origin(annotation) or annotation
    return frozenset({JSON_TYPES[base]}), False


def _sample(record: type) -> Any:
    """A record with every field it requires set to a plain value of its type."""
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(record)
    plain = {str: "x", int: 0, float: 0.0, bool: True, dict: {}, list: [], tuple: (),
             datetime: datetime(2026, 1, 1, tzinfo=UTC)}
    for field in dataclasses.fields(record):
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            _, nullable = _types(hints[field.name])
            base = typing.get_origin(hints[field.name]) or hints[field.name]
            values[field.name] = None if nullable else plain[base]
    return record(**values)


def domain_shape(record: type) -> Shape:
    """The fields `to_json` writes (each must be a field of the record), typed by the
    record's annotations."""
    hints = typing.get_type_hints(record)
    written = _sample(record).to_json()
    unknown = set(written) - set(hints)
    assert not unknown, f"{record.__name__}.to_json writes {unknown}, which are no fields"
    return {name: _types(hints[name]) for name in written}


def _schema_types(node: dict[str, Any], defs: dict[str, Any]) -> tuple[frozenset[str], bool]:
    if "$ref" in node:
        return _schema_types(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:
        parts = [_schema_types(part, defs) for part in node["anyOf"]]
        return frozenset().union(*(kinds for kinds, _ in parts)), any(n for _, n in parts)
    if "type" not in node:
        return frozenset({"any"}), True
    if node["type"] == "null":
        return frozenset(), True
    return frozenset({node["type"]}), False


def api_shape(model: type[BaseModel]) -> Shape:
    """The model's fields as the OpenAPI document publishes them; every one is required,
    as `to_json` writes every key."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    assert set(schema.get("required", ())) == set(schema["properties"]), model.__name__
    return {name: _schema_types(node, defs) for name, node in schema["properties"].items()}


def client_shape(model: type) -> Shape:
    """The client model's fields (but `raw`, the whole object), typed by its annotations."""
    hints = typing.get_type_hints(model)
    return {field.name: _types(hints[field.name])
            for field in dataclasses.fields(model) if field.name != "raw"}


def client_expects(model: type, server: Shape) -> Shape:
    """What the client should model of the server's `server` shape, given its known
    differences."""
    name = model.__name__
    lenient = CLIENT_NULLABLE.get(name, set())
    return {field: (kinds, nullable or field in lenient)
            for field, (kinds, nullable) in server.items()
            if field not in CLIENT_UNMODELLED.get(name, set())}


def test_the_api_schema_describes_the_domain_records_json() -> None:
    assert api_shape(NotificationOut) == domain_shape(Notification)
    assert api_shape(DeliveryStateOut) == domain_shape(DeliveryState)


def test_the_client_models_the_domain_records_json() -> None:
    assert client_shape(client.Notification) == client_expects(
        client.Notification, domain_shape(Notification))
    assert client_shape(client.Delivery) == client_expects(
        client.Delivery, domain_shape(DeliveryState))


def test_a_field_added_to_one_description_is_seen() -> None:
    class Wider(NotificationOut):
        snoozed_until: datetime | None

    class Narrower(NotificationOut):
        model_config = {"json_schema_extra": lambda schema: (
            schema["properties"].pop("read_at"), schema["required"].remove("read_at"))}

    assert api_shape(Wider) != domain_shape(Notification)
    assert api_shape(Narrower) != domain_shape(Notification)
    assert client_expects(client.Notification, api_shape(Wider)) != client_shape(
        client.Notification)


def test_the_client_reads_every_field_the_server_writes() -> None:
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    record = Notification(
        id="n1", user_id="alice", type="invoice", title="Invoice", message="Ready",
        channel="billing", priority="high", status="pending", scheduled_at=None,
        created_at=at, visible_at=at, delivered_at=None, read_at=None, data={"n": 1},
        in_app=True, producer="billing-service",
        deliveries=(DeliveryState("email", "pending", 0, None, at, digest_id="d7",
                                  deferred_until=at),),
        template={"key": "invoice", "version": 3, "locale": "de"},
        seen_at=at, archived_at=at, clicked_at=at, expires_at=at,
        url="https://example.com/i/1", actions=[{"label": "Pay", "url": "https://x.io/p"}],
    )
    read = client.Notification.from_json(record.to_json())
    assert read.template == {"key": "invoice", "version": 3, "locale": "de"}
    assert (read.seen_at, read.archived_at, read.clicked_at, read.expires_at) == (at,) * 4
    assert read.url == "https://example.com/i/1"
    assert read.actions == (client.Action("Pay", "https://x.io/p"),)
    (email,) = read.deliveries
    assert (email.digest_id, email.deferred_until, email.updated_at) == ("d7", at, at)
