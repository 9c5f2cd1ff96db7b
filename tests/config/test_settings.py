"""Settings come from the environment; each case runs in a fresh interpreter with a controlled env."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
from django.conf import settings
django.setup()
from config.celery import app
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": app.conf.task_always_eager,
    "broker": app.conf.broker_url,
    "debug": settings.DEBUG,
    "serializer": app.conf.task_serializer,
    "accept": app.conf.accept_content,
    "prefetch": app.conf.worker_prefetch_multiplier,
    "acks_late": app.conf.task_acks_late,
    "visibility": app.conf.broker_transport_options.get("visibility_timeout"),
    "time_limit": app.conf.task_time_limit,
}))
"""
VARIABLES = (
    "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL",
)  # fmt: skip


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def probe(**env: str) -> dict:
    result = run_python(PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_default_with_nothing_set():
    seen = probe()

    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert seen["eager"] is True
    assert seen["debug"] is True


def test_production_shape_from_urls():
    seen = probe(
        DATABASE_URL="postgres://u@db.example:5432/shop",
        CELERY_BROKER_URL="redis://cache.example:6379/0",
        REDIS_URL="redis://cache.example:6379/1",
    )

    assert seen["engine"] == "django.db.backends.postgresql"
    assert seen["cache"] == "core.cache.RedisCache"
    assert seen["eager"] is False
    assert seen["broker"] == "redis://cache.example:6379/0"


def test_celery_settings_suit_money_work():
    seen = probe(CELERY_BROKER_URL="redis://cache.example:6379/0")

    assert seen["serializer"] == "json"
    assert seen["accept"] == ["json"]
    assert seen["prefetch"] == 1
    assert seen["acks_late"] is False  # opt-in per idempotent task
    assert seen["visibility"] >= 4 * seen["time_limit"]


def test_production_settings_pass_check_deploy_without_warnings():
    result = run_python(
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "a-long-random-production-secret-0123456789",
        ALLOWED_HOSTS="shop.example.com",
        PAYMENTS_SANDBOX_SECRET="a-random-webhook-secret-0123456789",
        ALLOW_SANDBOX_PROVIDERS="1",  # a staging deployment: tests/config/test_checks.py has production's refusals
        SITE_URL="https://shop.example.com",
        IDENTITY_KEYS=Fernet.generate_key().decode(),  # members' legal names and ID numbers (docs/privacy.md)
        IDENTITY_INDEX_KEY="an-index-key-of-its-own-0123456789abcdef",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_refuses_the_development_secret_key():
    result = run_python("import django; django.setup()", DEBUG="0")

    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


@pytest.mark.parametrize("path", ["/", "/join/", "/login/", "/admin/login/"])
def test_public_pages_render(client, db, path):
    assert client.get(path).status_code == 200
