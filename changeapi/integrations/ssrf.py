"""Refusing outbound requests to addresses inside our own network (SSRF).

A destination is resolved once and the request is sent to the address that was checked, so a
DNS answer that changes between the check and the connection cannot redirect it. An IPv6
address that carries an IPv4 address (6to4, Teredo, NAT64, IPv4-mapped or -compatible) is
refused when the IPv4 address would be.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeDestination(Exception):
    """The URL is not one the service may send to."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# RFC 6052: where a NAT64 prefix of each length carries the IPv4 address. A local-use prefix may
# be any of these lengths inside 64:ff9b:1::/48, so every position is checked.
LOCAL_USE_PREFIX_LENGTHS = (48, 56, 64, 96)


def _allowed_networks() -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS]


def _is_internal(address: Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _rfc6052_ipv4(address: ipaddress.IPv6Address, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address a NAT64 address of this prefix length carries (bits 64-71 are skipped)."""
    packed = address.packed
    if prefix_length == 96:
        return ipaddress.IPv4Address(packed[12:])
    without_u = packed[:8] + packed[9:]
    start = prefix_length // 8
    return ipaddress.IPv4Address(without_u[start : start + 4])


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: 6to4, Teredo (server and client), NAT64 and
    IPv4-compatible addresses are routed to them, so each is checked like the address itself."""
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)  # 2002::/16, bits 16-48
    if address.teredo is not None:
        found.extend(address.teredo)  # 2001::/32; the client is the inverse of the last 32 bits
    if address in NAT64_WELL_KNOWN or address in IPV4_COMPATIBLE:
        found.append(_rfc6052_ipv4(address, 96))
    if address in NAT64_LOCAL_USE:
        found.extend(_rfc6052_ipv4(address, length) for length in LOCAL_USE_PREFIX_LENGTHS)
    return found


def address_refused(address: Address, allowed: list[Network]) -> bool:
    """Whether the service may not send to `address`: inside our network, or leading there,
    and in no network of SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS."""
    if any(address.version == network.version and address in network for network in allowed):
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return _is_internal(address)
    if address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is a.b.c.d itself, refused and allowed as that.
        return address_refused(address.ipv4_mapped, allowed)
    return _is_internal(address) or any(_is_internal(ipv4) for ipv4 in embedded_ipv4(address))


def destination_resolve(url: str) -> Destination:
    """Check a URL and pin the address to send to; raises UnsafeDestination."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeDestination("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeDestination("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeDestination("credentials in the URL are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeDestination("the URL's port is not valid") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination(f"the host {parts.hostname} does not resolve") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    allowed = _allowed_networks()
    for address in addresses:
        if address_refused(address, allowed):
            raise UnsafeDestination(f"{parts.hostname} resolves to {address}, an internal address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(scheme=parts.scheme, host=parts.hostname, port=port, address=str(addresses[0]), target=target)
