"""What every email sender shares: which recipient addresses are acceptable at all, and
the headers and MIME message a rendered `Email` becomes.

Both senders build the same headers, so a receiver sees the same Message-ID and one-click
unsubscribe (RFC 8058) whichever transport carried the message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr

from tidings.delivery.messages import Email

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


def envelope_address(header_from: str) -> str:
    """The addr-spec of a From header that may carry a display name
    ("Tidings <noreply@example.com>" -> "noreply@example.com")."""
    return parseaddr(header_from)[1] or header_from


def needs_smtputf8(address: str) -> bool:
    return not address.isascii()


def list_headers(email: Email) -> dict[str, str]:
    """Message-ID and, with an unsubscribe URL, the RFC 8058 one-click pair."""
    headers = {"Message-ID": angle(email.message_id)}
    if email.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{one_line(email.unsubscribe_url)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def build_message(email: Email, sender: str, now: datetime | None = None) -> EmailMessage:
    """A text/plain message, or multipart/alternative (text first, then HTML: clients show
    the last part they can render) when the record has HTML.

    Raises ValueError for a record that cannot be expressed as a message at all.
    """
    message = EmailMessage(policy=SMTP if email.to.isascii() else SMTPUTF8)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = one_line(email.subject)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    for name, value in list_headers(email).items():
        message[name] = value
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


def angle(message_id: str) -> str:
    message_id = one_line(message_id).strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def one_line(value: str) -> str:
    """Header values never carry line breaks (no header injection from a title)."""
    return " ".join(value.splitlines()).strip()
