"""What counts as an email address: the one rule the contact API (a 422 for a bad address)
and the email senders (a permanent failure without connecting) share."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address

MAX_ADDRESS_LENGTH = 254  # RFC 5321's path limit, less the angle brackets


def valid_address(address: str) -> bool:
    """A bare addr-spec `local@domain` (no display name, no spaces or control characters)
    that an SMTP server could be asked to deliver to."""
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        return False
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in address):
        return False
    try:
        # The stdlib parser refuses non-ASCII local parts (RFC 6531 allows them, over
        # SMTPUTF8): judge the shape with them masked.
        parsed = Address(addr_spec="".join(ch if ch.isascii() else "x" for ch in address))
    except (HeaderParseError, ValueError, IndexError, TypeError):
        return False
    domain = parsed.domain
    return bool(parsed.username) and bool(domain) and ".." not in domain and (
        not domain.startswith(".") and not domain.endswith(".")
    )
