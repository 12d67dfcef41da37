"""Outbound HTTP for integrations and webhooks (stdlib only): JSON in and out, no redirects.

Requests to user-supplied URLs (webhook subscribers, Slack response URLs) pass `guard=True`:
the URL is checked by `destination_resolve` and the connection goes to the checked address,
with the original host name for the Host header and TLS verification.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from changeapi.integrations.ssrf import Destination, destination_resolve


class OutboundError(Exception):
    """The request could not be sent or got no answer (DNS, connect, TLS, timeout)."""


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str]
    duration_ms: int

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a given address while verifying the certificate for the host name."""

    def __init__(self, address: str, port: int, *, server_hostname: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)  # type: ignore[attr-defined]


def _unguarded(url: str) -> Destination:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(f"not an http(s) URL: {url}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Destination(scheme=parts.scheme, host=parts.hostname, port=port, address=parts.hostname, target=target)


def http_send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    guard: bool = False,
    timeout: float | None = None,
) -> HttpResult:
    """Send one request; raises UnsafeDestination (guard) or OutboundError, never follows redirects."""
    destination = destination_resolve(url) if guard else _unguarded(url)
    timeout = timeout or settings.SCHEMAGATE_OUTBOUND_TIMEOUT_SECONDS
    all_headers = {"User-Agent": "Schemagate", "Accept": "application/json", **(headers or {})}
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    default_port = 443 if destination.scheme == "https" else 80
    all_headers["Host"] = destination.host if destination.port == default_port else f"{destination.host}:{destination.port}"
    connection: http.client.HTTPConnection
    if destination.scheme == "https":
        connection = _PinnedHTTPSConnection(
            destination.address, destination.port, server_hostname=destination.host, timeout=timeout
        )
    else:
        connection = http.client.HTTPConnection(destination.address, destination.port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, destination.target, body=body, headers=all_headers)
        response = connection.getresponse()
        content = response.read(1_000_000)
        result_headers = {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
    return HttpResult(
        status=response.status, body=content, headers=result_headers, duration_ms=int((time.monotonic() - started) * 1000)
    )
