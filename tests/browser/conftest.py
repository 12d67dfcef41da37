"""A real headless Chromium (Debian's `chromium` package, installed here when missing) for the
tests that check what a browser shows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chromium import Browser, chromium_install


@pytest.fixture(scope="session")
def chromium() -> str:
    executable, reason = chromium_install()
    if executable is None:
        pytest.skip(f"headless Chromium could not be installed: {reason}")
    return executable


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with Browser(chromium, width=1280, height=1600) as opened:
        yield opened
