"""The OpenAPI document, as precise as the validators: FastAPI's document, plus what it
cannot derive from the models.

- The locales and time zones a client may name (`domain/locales.py`), as the components
  `Locale` and `TimeZone` that the request models refer to (listed once, not per field).
- What this server's configuration decides: without `ENCRYPTION_KEYS`, nothing can be
  marked `sensitive` (the create answers 422), so the document allows no entry.

`tests/test_fuzz_http.py` holds the document to the server: requests it calls valid are
accepted, requests it calls invalid are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from tidings.domain.locales import (
    COMPONENT,
    LOCALE_SCHEMA,
    ZONE_SCHEMA,
    locale_tags,
    zone_names,
)

DRAFT_SCHEMA = "NotificationDraft"


def install(api: FastAPI, *, can_seal: bool) -> None:
    """Serve the amended document at `/openapi.json` (and `/docs`), built once."""
    generate: Callable[[], dict[str, Any]] = api.openapi

    def document() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = amend(generate(), can_seal=can_seal)
        return api.openapi_schema

    api.openapi = document  # type: ignore[method-assign]


def amend(spec: dict[str, Any], *, can_seal: bool) -> dict[str, Any]:
    spec = _refer(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas[LOCALE_SCHEMA] = {
        "type": "string", "enum": sorted(locale_tags()),
        "description": "A locale babel knows, as babel spells it (`de_AT`), with `-` for "
                       "`_` (`pt-BR`), or either in lower case; stored as babel spells it.",
    }
    schemas[ZONE_SCHEMA] = {"type": "string", "enum": sorted(zone_names()),
                            "description": "An IANA time zone name."}
    draft = schemas.get(DRAFT_SCHEMA)
    if draft is not None and not can_seal:
        sensitive = draft["properties"]["sensitive"]
        sensitive["maxItems"] = 0
        sensitive["description"] += " This server has no ENCRYPTION_KEYS: none."
    return spec


def _refer(node: Any) -> Any:
    """The document with every `{COMPONENT: name}` mark made a `$ref` to that component."""
    if isinstance(node, list):
        return [_refer(item) for item in node]
    if not isinstance(node, dict):
        return node
    amended = {key: _refer(value) for key, value in node.items() if key != COMPONENT}
    if COMPONENT in node:
        amended["$ref"] = f"#/components/schemas/{node[COMPONENT]}"
    return amended
