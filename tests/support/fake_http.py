"""A small threaded HTTP server on 127.0.0.1 that records every request and answers from a script.

It stands in for GitHub, Slack and webhook subscribers: the code under test talks real HTTP
to it, and tests read what was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest


@dataclass
class Recorded:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Canned:
    status: int = 200
    body: Any = None  # bytes or text sent as is, anything else as JSON
    headers: dict[str, str] | None = None


class FakeHttpServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Canned]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                canned = fake._record(recorded)
                payload = canned.body
                if isinstance(payload, str):
                    data = payload.encode()
                elif isinstance(payload, bytes):
                    data = payload
                else:
                    data = json.dumps({} if payload is None else payload).encode()
                self.send_response(canned.status)
                headers = {"Content-Type": "application/json", **(canned.headers or {})}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def respond(self, method: str, path: str, *answers: Canned) -> None:
        """Answer requests to `path` (without query) with these, in order; the last one repeats."""
        with self._lock:
            self._routes[(method, path)] = list(answers)

    def _record(self, recorded: Recorded) -> Canned:
        with self._lock:
            self.requests.append(recorded)
            answers = self._routes.get((recorded.method, urlsplit(recorded.path).path))
            if not answers:
                return Canned(404, {"message": "Not Found"})
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def sent(self, method: str, path: str) -> list[Recorded]:
        """Requests received for `path` (without query), in order."""
        with self._lock:
            return [r for r in self.requests if r.method == method and urlsplit(r.path).path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_http() -> Iterator[FakeHttpServer]:
    server = FakeHttpServer()
    server.start()
    yield server
    server.stop()
