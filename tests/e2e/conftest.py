"""Shared fixtures for the browser tests: Playwright driving Debian's Chromium against Django's live server."""

import os
import shutil

import pytest
from django.db import connections

from config.celery import app as celery_app

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"width": 375, "height": 800}


@pytest.fixture
def chromium(monkeypatch, tmp_path, settings):
    """A launched Chromium, with the server side ready for it: new contexts come from `chromium.new_context()`."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements.txt)")
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install chromium")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.MEDIA_ROOT = tmp_path / "media"
    # The sandbox provider's webhook is sent by a task, run in-process (tests/conftest.py's _eager_celery: these tests
    # are not marked `broker`), so the live server receives it.
    assert celery_app.conf.task_always_eager
    # The live server's request threads close their connections after each request: see tests/conftest.py.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # The test body's ORM calls ran while Playwright's event loop was running, and may have used a connection
        # of their own (Django keeps connections per context there); close it here, in the same context, or the
        # test database could not be dropped at the end of the run.
        connections.close_all()


@pytest.fixture
def browser_page(chromium):
    """One page in a fresh context the size of a phone."""
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
