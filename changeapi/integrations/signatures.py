"""Request signatures: verifying GitHub and Slack, signing outbound webhooks (Standard Webhooks).

Every signature is over the raw request body, and every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def github_signature_valid(*, secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def slack_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def slack_signature_problem(
    *, secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float, tolerance: int
) -> str | None:
    """Why a Slack request is not authentic, or None when it is.

    `v0=` + HMAC-SHA256(secret, "v0:{timestamp}:{body}"); a timestamp outside the window is a
    replay (or a skewed clock) and refused whatever the signature says.
    """
    if not secret:
        return "Slack is not configured on this server"
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    try:
        sent = int(timestamp)
    except ValueError:
        return "X-Slack-Request-Timestamp is not a number"
    if abs(now - sent) > tolerance:
        return "the request timestamp is outside the allowed window (replayed or delayed request)"
    expected = slack_signature(secret=secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "X-Slack-Signature does not match the body"
    return None


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` value: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
