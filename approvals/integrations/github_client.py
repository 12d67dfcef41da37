"""GitHub's REST API as the service uses it: App or token authentication and a small client.

A GitHub App's installation token is made from a short-lived JWT signed with the App's key and
cached for most of its hour; without an App, a plain token (GITHUB_TOKEN) is used. Every call
goes through `http_send`, so the outbound guards and timeouts apply.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from changeapi.integrations.http import HttpResult, OutboundError, http_send
from changeapi.models import GitHubIntegration

CHECK_RUN_NAME = "Schemagate dry-run"
VERIFICATION_CHECK_RUN_NAME = "Schemagate verification"
ROLLOUT_CHECK_RUN_NAME = "Schemagate rollout"
MAX_FILE_PAGES = 30  # GitHub lists at most 3,000 files of a pull request


class GitHubError(Exception):
    """GitHub refused a call or could not be reached."""


_installation_tokens: dict[tuple[str, str, int], tuple[str, float]] = {}


def _app_jwt(app_id: str, private_key_pem: str) -> str:
    """A GitHub App JWT (RS256), valid for nine minutes."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"iat": now - 60, "exp": now + 540, "iss": app_id}).encode())
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GitHubError("GITHUB_APP_PRIVATE_KEY is not an RSA key")
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{b64(signature)}"


def github_token(installation_id: int | None) -> str:
    """An installation token when a GitHub App is configured (check runs need one), else GITHUB_TOKEN."""
    if settings.GITHUB_APP_ID and settings.GITHUB_APP_PRIVATE_KEY and installation_id:
        cache_key = (settings.GITHUB_API_URL, settings.GITHUB_APP_ID, installation_id)
        cached = _installation_tokens.get(cache_key)
        if cached and cached[1] > time.time() + 60:
            return cached[0]
        result = http_send(
            "POST",
            f"{settings.GITHUB_API_URL.rstrip('/')}/app/installations/{installation_id}/access_tokens",
            headers={
                "Authorization": f"Bearer {_app_jwt(settings.GITHUB_APP_ID, settings.GITHUB_APP_PRIVATE_KEY)}",
                "Accept": "application/vnd.github+json",
            },
        )
        if result.status != 201:
            raise GitHubError(f"GitHub refused an installation token: {result.status}")
        token = result.json()["token"]
        _installation_tokens[cache_key] = (token, time.time() + 50 * 60)
        return token
    if settings.GITHUB_TOKEN:
        return settings.GITHUB_TOKEN
    raise GitHubError("no GitHub credentials: set GITHUB_TOKEN or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY")


@dataclass
class GitHubClient:
    token: str

    def call(self, method: str, path: str, *, json_body: Any = None, accept: str = "application/vnd.github+json") -> HttpResult:
        try:
            result = http_send(
                method,
                settings.GITHUB_API_URL.rstrip("/") + path,
                json_body=json_body,
                headers={"Authorization": f"Bearer {self.token}", "Accept": accept, "X-GitHub-Api-Version": "2022-11-28"},
            )
        except OutboundError as exc:
            raise GitHubError(f"GitHub is unreachable: {exc}") from exc
        if not result.ok:
            raise GitHubError(f"GitHub answered {result.status} to {method} {path}: {result.body[:300]!r}")
        return result

    def pull_request_files(self, repository: str, number: int) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = []
        for page in range(1, MAX_FILE_PAGES + 1):
            batch = self.call("GET", f"/repos/{repository}/pulls/{number}/files?per_page=100&page={page}").json()
            files += batch
            if len(batch) < 100:
                break
        return files

    def file_text(self, repository: str, path: str, ref: str) -> str:
        result = self.call(
            "GET", f"/repos/{repository}/contents/{quote(path)}?ref={quote(ref)}", accept="application/vnd.github.raw+json"
        )
        return result.body.decode("utf-8")

    def check_run_create(
        self,
        repository: str,
        *,
        head_sha: str,
        conclusion: str | None,
        title: str,
        summary: str,
        url: str,
        name: str = CHECK_RUN_NAME,
    ) -> None:
        """A completed check run with `conclusion`, or one still in progress when it is None."""
        outcome = {"status": "in_progress"} if conclusion is None else {"status": "completed", "conclusion": conclusion}
        self.call(
            "POST",
            f"/repos/{repository}/check-runs",
            json_body={
                "name": name,
                "head_sha": head_sha,
                **outcome,
                "details_url": url,
                "output": {"title": title, "summary": summary},
            },
        )

    def comment_create(self, repository: str, number: int, body: str) -> None:
        self.call("POST", f"/repos/{repository}/issues/{number}/comments", json_body={"body": body})


def github_client(integration: GitHubIntegration) -> GitHubClient:
    """A client authenticated for `integration` (its App installation, or the plain token)."""
    return GitHubClient(token=github_token(integration.installation_id))
