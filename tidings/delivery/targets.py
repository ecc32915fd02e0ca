"""Checks on URLs that the service will later POST to on someone's behalf (webhooks, Web
Push endpoints), so that an admin or a user cannot aim Tidings at its own network.

A URL passes when it is http(s) with a host and, unless private targets are allowed, every
address the host is or resolves to is a public unicast address. Resolution goes through
the event loop's resolver, so a check never blocks the loop. A check at registration does
not pin the address: senders check again before each request (a name can be re-pointed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from tidings.domain.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnresolvableTarget(ValidationFailed):
    """The host did not resolve (now): at registration a 422 like any bad URL; for a
    sender, a reason to try again later rather than to give up."""


async def check_target_url(
    url: str,
    allow_private: bool,
    allowed_hosts: Sequence[str] | None = None,
    *,
    field: str = "url",
    resolve_timeout_s: float = 5.0,
) -> None:
    """Raise `ValidationFailed(field=field)` unless `url` may be a delivery target.

    `allowed_hosts` (Web Push's WEBPUSH_ALLOWED_HOSTS), when non-empty, admits only hosts
    equal to an entry or under it by whole labels: "googleapis.com" admits
    "fcm.googleapis.com", not "evilgoogleapis.com".
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed(f"not a valid URL: {exc}", field=field) from exc
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed("must be an http:// or https:// URL", field=field)
    if not host:
        raise ValidationFailed("the URL has no host", field=field)
    host = host.rstrip(".").lower()
    if allowed_hosts and not host_allowed(host, allowed_hosts):
        raise ValidationFailed(f"host {host!r} is not among the allowed hosts", field=field)
    if allow_private:
        return
    port = port or (443 if parts.scheme == "https" else 80)
    for address in await _addresses(host, port, field, resolve_timeout_s):
        if not is_public_address(address):
            raise ValidationFailed(
                f"host {host!r} is or resolves to a non-public address ({address})",
                field=field,
            )


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether `host` is one of `allowed_hosts` or a subdomain of one (label-wise)."""
    host = host.rstrip(".").lower()
    for entry in allowed_hosts:
        suffix = entry.strip().lower().removeprefix("*.").strip(".")
        if suffix and (host == suffix or host.endswith("." + suffix)):
            return True
    return False


def is_public_address(address: IPAddress) -> bool:
    """A globally routable unicast address; IPv4 hidden inside IPv6 (mapped, 6to4, NAT64)
    is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if address.teredo is not None:
            return False  # a tunnel to an address we cannot judge
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


async def _addresses(host: str, port: int, field: str, timeout_s: float) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass  # a name, not a literal
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise UnresolvableTarget(f"host {host!r} does not resolve", field=field) from exc
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the zone is not part of
            # the address that decides where the packet goes.
            addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise UnresolvableTarget(f"host {host!r} has no IP address", field=field)
    return addresses
