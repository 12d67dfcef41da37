"""Headless Chromium from Debian's `chromium` package, driven over the DevTools protocol on a pipe.

Enough to open a page, fill and submit a form, run a script in the page and take a screenshot,
with nothing but the standard library: the browser reads commands from fd 3 and writes
answers and events to fd 4, each message JSON ended by a NUL byte.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

EXECUTABLES = ("chromium", "chromium-browser")
INSTALL_TIMEOUT_S = 900


def chromium_executable() -> str | None:
    return next((path for path in map(shutil.which, EXECUTABLES) if path), None)


def chromium_install() -> tuple[str | None, str]:
    """The browser's path, installing Debian's package when it is missing; else None and why."""
    found = chromium_executable()
    if found:
        return found, ""
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and there is no apt-get to install it"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=INSTALL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"`{' '.join(command)}` failed: {error}"
        if result.returncode:
            return None, f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()[-500:]}"
    found = chromium_executable()
    return found, "" if found else "apt-get installed chromium, but no chromium executable is on PATH"


class BrowserError(RuntimeError):
    pass


_ON_FDS_3_AND_4 = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); os.execv(sys.argv[3], sys.argv[3:])"
)


def _above_four(fd: int) -> int:
    """`fd` moved to a number above 4, so putting the pipes on fds 3 and 4 cannot close one."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless browser with one page, `width` × `height` CSS pixels."""

    def __init__(self, executable: str, *, width: int = 1280, height: int = 1600) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        commands_read, answers_write = _above_four(commands_read), _above_four(answers_write)
        # A small Python puts the pipe ends on fds 3 and 4, where the browser expects them, and
        # becomes the browser (no preexec_fn: the test's live server runs in a thread).
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _ON_FDS_3_AND_4,
                str(commands_read),
                str(answers_write),
                executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(commands_read, answers_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None
        target = self.call("Target.createTarget", {"url": "about:blank"}, timeout=30)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        )

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._session = None
            self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._commands, self._answers):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("no answer from the browser in time")
            ready, _, _ = select.select([self._answers], [], [], remaining)
            if ready:
                chunk = os.read(self._answers, 1 << 16)
                if not chunk:
                    raise BrowserError("the browser closed its pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 15) -> dict[str, Any]:
        """Send one command (to the page once attached) and wait for its answer; events are kept."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            command["sessionId"] = self._session
        os.write(self._commands, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._events.append(message)

    def _wait_for_load(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(event["method"] == "Page.loadEventFired" for event in self._events):
            message = self._message(deadline)
            if "method" in message:
                self._events.append(message)

    def open(self, url: str, *, timeout: float = 15) -> None:
        """Navigate to `url` and wait until it (with its images) has loaded."""
        self._events.clear()
        answer = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        self._wait_for_load(timeout)

    def evaluate(self, expression: str, *, timeout: float = 15) -> Any:
        """The value of a script run in the page."""
        answer = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, timeout=timeout
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def submit(self, expression: str, *, timeout: float = 15) -> None:
        """Run a script that submits a form, and wait for the page it leads to."""
        self._events.clear()
        self.evaluate(expression, timeout=timeout)
        self._wait_for_load(timeout)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
