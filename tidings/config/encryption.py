"""The encryption-at-rest part of the settings: the keys that seal the parts producers
mark sensitive. A group of fields that `Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings

from tidings.crypto.keyring import KeyRing, parse_keys


class EncryptionSettings(BaseSettings):
    """ENCRYPTION_KEYS and ENCRYPTION_KEYS_FILE."""

    # `id:base64key` entries (comma- or line-separated), the first one writes, all read.
    # Or a file holding them.
    encryption_keys: SecretStr = Field(SecretStr(""), validation_alias="ENCRYPTION_KEYS")
    encryption_keys_file: str = Field("", validation_alias="ENCRYPTION_KEYS_FILE")
    _keyring: KeyRing | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _keys_parse(self) -> EncryptionSettings:
        text = self.encryption_keys.get_secret_value()
        if text.strip() and self.encryption_keys_file:
            raise ValueError("ENCRYPTION_KEYS and ENCRYPTION_KEYS_FILE: set one, not both")
        setting = "ENCRYPTION_KEYS"
        if self.encryption_keys_file:
            setting = "ENCRYPTION_KEYS_FILE"
            try:
                text = Path(self.encryption_keys_file).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"ENCRYPTION_KEYS_FILE: cannot read the file ({exc})") from exc
        self._keyring = parse_keys(text, setting)
        if self.encryption_keys_file and self._keyring is None:
            raise ValueError("ENCRYPTION_KEYS_FILE: the file holds no key")
        return self

    def keyring(self) -> KeyRing | None:
        """The encryption keys (checked at start-up); None when none are configured."""
        return self._keyring
