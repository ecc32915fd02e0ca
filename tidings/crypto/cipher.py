"""AES-256-GCM over single values, each sealed into one self-describing text:

    enc:v1:<key id>:<base64url(nonce | ciphertext | tag)>

A fresh random 96-bit nonce per value (the random-nonce bound of GCM, 2^32 values per
key, is far beyond what one key seals between rotations here). The caller's *context*
(which row, which field) is the associated data: it is not stored, it is supplied again to
open, so a value copied to another row or field fails authentication instead of being read
where it does not belong.

Sealing and opening a notification's few fields takes microseconds, so it runs on the
event loop; nothing here blocks.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tidings.crypto.keyring import EncryptionKey, KeyRing

PREFIX = "enc:v1:"
NONCE_BYTES = 12
TAG_BYTES = 16


class Undecryptable(Exception):
    """A sealed value that cannot be opened. The message says why (unknown key,
    malformed, failed authentication) and never holds the value or a key."""


class FieldCipher:
    """Seals with the key ring's current key, opens with whichever key a value names."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._aead = {key.id: AESGCM(key.secret) for key in keyring.keys}

    @property
    def current_key_id(self) -> str:
        return self._keyring.current.id

    def seal(self, plaintext: bytes, context: str) -> str:
        key = self._keyring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[key.id].encrypt(nonce, plaintext, _associated(key, context))
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{key.id}:{body}"

    def open(self, envelope: str, context: str) -> bytes:
        """The plaintext of a value sealed under `context`; `Undecryptable` otherwise."""
        key_id, raw = _split(envelope)
        key = self._keyring.find(key_id)
        if key is None:
            raise Undecryptable(f"key '{key_id}' is not among the configured keys")
        try:
            return self._aead[key.id].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                              _associated(key, context))
        except InvalidTag:
            raise Undecryptable(
                f"authentication failed under key '{key_id}' (altered, moved from another "
                "row or field, or a different key with the same id)"
            ) from None

    def is_current(self, envelope: str) -> bool:
        """Sealed under the current key (rotation leaves such values alone)."""
        return key_id_of(envelope) == self._keyring.current.id


def key_id_of(envelope: str) -> str | None:
    """The key id a sealed value names; None for anything that is not a sealed value."""
    try:
        return _split(envelope)[0]
    except Undecryptable:
        return None


def _split(envelope: str) -> tuple[str, bytes]:
    if not isinstance(envelope, str) or not envelope.startswith(PREFIX):
        raise Undecryptable("not a sealed value")
    key_id, colon, body = envelope[len(PREFIX):].partition(":")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not colon or not key_id or len(raw) < NONCE_BYTES + TAG_BYTES:
        raise Undecryptable("malformed sealed value")
    return key_id, raw


def _associated(key: EncryptionKey, context: str) -> bytes:
    # The format version and key id are bound too: a value cannot be relabelled.
    return f"{PREFIX}{key.id}\x00{context}".encode()
