"""Refusing outbound requests to addresses inside our own network (SSRF).

A destination is resolved once and the request is sent to the address that was checked, so a
DNS answer that changes between the check and the connection cannot redirect it.
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


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS]


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


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
        if _is_internal(address) and not any(address in network for network in allowed):
            raise UnsafeDestination(f"{parts.hostname} resolves to {address}, an internal address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(scheme=parts.scheme, host=parts.hostname, port=port, address=str(addresses[0]), target=target)
