"""Token authentication that also accepts `Authorization: Bearer <token>` (what CI tools send).

`Bearer sg_...` is a project API key (tried first); any other Bearer value is a DRF token.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from changeapi.services.api_keys import KEY_PREFIX, ApiKeyInvalid, api_key_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer sg_<prefix>_<secret>`: acts as the key's own service account.

    A revoked, expired or unknown key is a 401; a Bearer value that is not an API key is left
    to the token authentication that follows.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer" or not parts[1].startswith(KEY_PREFIX.encode()):
            return None
        try:
            api_key = api_key_authenticate(key=parts[1].decode("ascii"))
        except (ApiKeyInvalid, UnicodeDecodeError) as exc:
            raise AuthenticationFailed(str(exc) if isinstance(exc, ApiKeyInvalid) else "invalid API key") from exc
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the Bearer scheme in OpenAPI (`Authorization: Bearer <token>`)."""

    target_class = "changeapi.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer"}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents project API keys: the same Bearer header, with an `sg_` key."""

    target_class = "changeapi.api.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project API key: `Authorization: Bearer sg_<prefix>_<secret>`.",
        }
