"""The TLS part of the settings: HTTPS and WSS on the same port when both files are set.
A group of fields that `Settings` inherits (as `redis.py`)."""

from __future__ import annotations

import ssl

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings


class TLSSettings(BaseSettings):
    """TLS_CERT_FILE and TLS_KEY_FILE."""

    # PEM files; the certificate file may hold the whole chain.
    tls_cert_file: str = Field("", validation_alias="TLS_CERT_FILE")
    tls_key_file: str = Field("", validation_alias="TLS_KEY_FILE")

    @model_validator(mode="after")
    def _tls_pair_loads(self) -> TLSSettings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE: set both, or neither")
        if self.tls_cert_file:
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"TLS_CERT_FILE and TLS_KEY_FILE: cannot load the pair ({exc})"
                ) from exc
        return self

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)
