"""Playwright (sync API) against Django's live server, with the Debian Chromium.

Never run `playwright install` here: the system browser at /usr/bin/chromium is used instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls in the same
# thread (fixtures, services) would otherwise raise SynchronousOnlyOperation.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/bt-shots")
PASSWORD = "pw-curator-123"  # the `curator` fixture's password (tests/conftest.py)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}")
    return {
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def page_errors(page) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Uncaught JavaScript errors on the page; a test fails if any happened."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    yield errors
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def signed_in(page, page_errors, live_server, curator):  # type: ignore[no-untyped-def]
    """The `page`, signed in as the curator through the login form."""
    login(page, live_server.url, curator.username, PASSWORD)
    page.wait_for_url(f"{live_server.url}/")
    return page


def login(page, base_url: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base_url}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
