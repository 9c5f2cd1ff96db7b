"""Shared fixtures for the browser tests: Playwright driving Debian's Chromium against Django's live server."""

import os
import shutil

import pytest
from django.db import connection

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
    # The sandbox provider's webhook is sent by a task: run it in-process so the live server receives it.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    _close_live_server_connections()


@pytest.fixture
def browser_page(chromium):
    """One page in a fresh context the size of a phone."""
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _close_live_server_connections() -> None:
    # The live server's request threads keep persistent connections (CONN_MAX_AGE); end them so the
    # test database can be dropped at the end of the run.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
