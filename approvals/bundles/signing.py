"""Ed25519 signing of bundle manifests; anyone with the public key can verify."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings


def signing_key() -> Ed25519PrivateKey:
    """The configured PEM key, or one derived from SECRET_KEY so a single machine just works."""
    if settings.SCHEMAGATE_SIGNING_KEY:
        key = serialization.load_pem_private_key(settings.SCHEMAGATE_SIGNING_KEY.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("SCHEMAGATE_SIGNING_KEY must be an Ed25519 private key")
        return key
    seed = hashlib.sha256(f"schemagate-bundle-signing:{settings.SECRET_KEY}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_pem() -> str:
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(data: bytes) -> bytes:
    """A detached signature, base64 text so it can be read and copied."""
    return base64.b64encode(signing_key().sign(data)) + b"\n"


def verify(data: bytes, signature: bytes, public_pem: str) -> bool:
    key = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
