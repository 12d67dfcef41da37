"""The API over urllib: JSON in and out, bearer tokens, and errors sorted by whose fault they are.

A refusal by the service (a 4xx problem+json) is the caller's to fix and becomes `Refused`; a
server error, a timeout or an unreachable host is the service's, and becomes `Unavailable`. The
CLI maps each to its own exit code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

API_PREFIX = "/api/v1"
USER_AGENT = "schemagate-cli"


class Refused(Exception):
    """The service refused the request (4xx): the request, its input or its credentials are wrong."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(problem_text(status, problem))


class Unavailable(Exception):
    """The service could not answer: unreachable, timed out, or a 5xx."""


def problem_text(status: int, problem: dict[str, Any]) -> str:
    """A problem+json body as lines a person reads: title and detail, each located error, the suggestion."""
    title = problem.get("title") or f"HTTP {status}"
    lines = [f"{title} ({status})" + (f": {problem['detail']}" if problem.get("detail") else "")]
    for error in problem.get("errors") or []:
        if not isinstance(error, dict):
            continue
        where = error.get("pointer") or ""
        if error.get("file"):
            where = f"{error['file']}:{error.get('line', '?')}:{error.get('column', '?')}"
        if where and error.get("detail") != problem.get("detail"):
            lines.append(f"  {where}: {error.get('detail', '')}")
        elif where:
            lines.append(f"  at {where}")
    if problem.get("suggestion"):
        lines.append(f"  suggestion: add {json.dumps(problem['suggestion'])} to the request")
    return "\n".join(lines)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise Unavailable(f"the service answered {self.status} with a body that is not JSON: {self.body[:200]!r}") from None


@dataclass
class Api:
    """One service: its base URL (with or without `/api/v1`) and a token or project API key."""

    url: str
    token: str | None = None
    timeout: float = 60.0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"SCHEMAGATE_URL must be an http(s) URL, not {self.url!r}")
        self.url = self.url.rstrip("/").removesuffix(API_PREFIX)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request to `API_PREFIX + path`; a JSON `body` or raw `data`. Raises Refused or Unavailable."""
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{API_PREFIX}{path}", data=data, method=method)  # noqa: S310 - http(s) only, checked above
        request.add_header("Accept", f"{accept}, application/problem+json")
        request.add_header("User-Agent", USER_AGENT)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - http(s) only, checked above
                response = Response(answer.status, dict(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as error:
            response = Response(error.code, dict(error.headers.items()), error.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise Unavailable(f"{self.url} cannot be reached: {getattr(error, 'reason', error)}") from None
        if "Warning" in response.headers:
            self.warnings.append(response.headers["Warning"])
        if response.status >= 500:
            raise Unavailable(f"{method} {path} failed on the server ({response.status}): {_detail(response)}")
        if response.status >= 400:
            try:
                problem = response.json()
            except Unavailable:
                problem = {"detail": response.body.decode(errors="replace")[:500]}
            raise Refused(response.status, problem if isinstance(problem, dict) else {"detail": str(problem)})
        return response


def _detail(response: Response) -> str:
    try:
        body = response.json()
    except Unavailable:
        return response.body.decode(errors="replace")[:300]
    return str(body.get("detail") or body.get("title") or body) if isinstance(body, dict) else str(body)
