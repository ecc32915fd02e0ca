"""What counts as an email address: the one rule the contact API (a 422 for a bad address)
and the email senders (a permanent failure without connecting) share."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address

MAX_ADDRESS_LENGTH = 254  # RFC 5321's path limit, less the angle brackets

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
# The form of a delivery target URL (webhooks, Web Push endpoints), in the OpenAPI document
# and judged by the same pattern: http or https, a host name or IPv4 address, an optional
# port, then printable ASCII. Where it points (DNS, public addresses) is checked apart
# (`delivery/targets.py`), as no pattern can.
TARGET_URL_PATTERN = (rf"^https?://{_LABEL}(?:\.{_LABEL})*\.?(?::{_PORT})?"
                      r"(?:[/?#][\x21-\x7e]*)?$")


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
