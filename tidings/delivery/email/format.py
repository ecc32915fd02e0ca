"""What every email sender shares: which recipient addresses are acceptable at all, and
the headers and MIME message a rendered `Email` becomes.

Both senders build the same headers, so a receiver sees the same Message-ID and one-click
unsubscribe (RFC 8058) whichever transport carried the message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8, compat32
from email.utils import format_datetime, formataddr, parseaddr

from tidings.delivery.messages import Email


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


def render_message(email: Email, sender: str, now: datetime | None = None) -> bytes:
    """The message as sent (CRLF line ends): text/plain, or multipart/alternative (text
    first, then HTML: clients show the last part they can render) when the record has
    HTML. Non-ASCII subjects and display names are RFC 2047 encoded; a non-ASCII mailbox
    gives an RFC 6532 message, which needs a server offering SMTPUTF8.

    Raises ValueError for a record that cannot be expressed as a message at all.
    """
    date = format_datetime(now or datetime.now(UTC))
    if email.to.isascii() and envelope_address(sender).isascii():
        return _render_ascii(email, sender, date)
    return _render_utf8(email, sender, date)


def _render_ascii(email: Email, sender: str, date: str) -> bytes:
    # The legacy (compat32) API, because the modern one spends about a millisecond per
    # message parsing and refolding headers: a third of a sender's CPU at 500 emails/s.
    text = MIMEText(email.text, "plain", "utf-8")
    message: Message = text
    if email.html is not None:
        message = MIMEMultipart("alternative")
        message.attach(text)
        message.attach(MIMEText(email.html, "html", "utf-8"))
    message["From"] = formataddr(parseaddr(sender), "utf-8")
    message["To"] = email.to
    message["Subject"] = one_line(email.subject)  # non-ASCII: RFC 2047 on output
    message["Date"] = date
    for name, value in list_headers(email).items():
        message[name] = value
    return message.as_bytes(policy=_CRLF_COMPAT32)


def _render_utf8(email: Email, sender: str, date: str) -> bytes:
    message = EmailMessage(policy=SMTPUTF8)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = one_line(email.subject)
    message["Date"] = date
    for name, value in list_headers(email).items():
        message[name] = value
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message.as_bytes()


_CRLF_COMPAT32 = compat32.clone(linesep="\r\n")


def angle(message_id: str) -> str:
    message_id = one_line(message_id).strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def one_line(value: str) -> str:
    """Header values never carry line breaks (no header injection from a title)."""
    return " ".join(value.splitlines()).strip()
