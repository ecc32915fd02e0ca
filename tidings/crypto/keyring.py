"""The encryption keys: parsed from `ENCRYPTION_KEYS` (or the file `ENCRYPTION_KEYS_FILE`
names), one `id:base64key` entry per key, separated by commas or new lines.

The first entry is the current key, the one every new value is written with; every entry
can read. Errors name the setting and the entry's position or id, never key material.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

KEY_BYTES = 32  # AES-256
# Key ids travel in every stored value (`enc:v1:<id>:...`): short, and free of `:`.
KEY_ID = re.compile(r"[A-Za-z0-9_.\-]{1,32}")


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The keys in the order given: `current` writes, all read."""

    keys: tuple[EncryptionKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key ring needs at least one key")

    @property
    def current(self) -> EncryptionKey:
        return self.keys[0]

    def find(self, key_id: str) -> EncryptionKey | None:
        return next((key for key in self.keys if key.id == key_id), None)


def parse_keys(text: str, setting: str) -> KeyRing | None:
    """The key ring in `text`; None when it holds no entry. Blank entries and lines
    starting with `#` are skipped. `ValueError` names `setting` and what is wrong."""
    entries = [
        part.strip()
        for line in text.splitlines()
        if not line.strip().startswith("#")
        for part in line.split(",")
        if part.strip()
    ]
    keys: list[EncryptionKey] = []
    for position, entry in enumerate(entries, start=1):
        key = _parse_entry(entry, position, setting)
        if any(known.id == key.id for known in keys):
            raise ValueError(f"{setting}: key id '{key.id}' is given twice")
        keys.append(key)
    return KeyRing(tuple(keys)) if keys else None


def _parse_entry(entry: str, position: int, setting: str) -> EncryptionKey:
    key_id, colon, encoded = entry.partition(":")
    key_id = key_id.strip()
    if not colon or not KEY_ID.fullmatch(key_id):
        raise ValueError(
            f"{setting}: entry {position} must be `id:base64key`, the id 1-32 letters, "
            "digits, '_', '.' or '-' (e.g. the line `tidings keys generate` prints)"
        )
    secret = _decode(encoded.strip())
    if secret is None or len(secret) != KEY_BYTES:
        got = "not base64" if secret is None else f"{len(secret)} bytes"
        raise ValueError(
            f"{setting}: key '{key_id}' must be {KEY_BYTES} random bytes in base64 "
            f"(it is {got}); `tidings keys generate` makes one"
        )
    return EncryptionKey(key_id, secret)


def _decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not."""
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def generate_entry(key_id: str | None = None, now: datetime | None = None) -> str:
    """A new `id:base64key` entry with a random key; the default id names the UTC minute
    it was made, so a ring's keys sort by age at a glance."""
    if key_id is None:
        key_id = "k" + (now or datetime.now(UTC)).strftime("%Y%m%d%H%M")
    if not KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1-32 letters, digits, '_', '.' or '-'")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"
