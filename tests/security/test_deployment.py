"""Production settings (DEBUG=0) pass `check --deploy` with no warning, and what they promise is on the responses:
HTTPS-only cookies, HSTS, clickjacking protection, the Content Security Policy.

Settings are computed when config.settings is imported, so each case runs in a fresh interpreter with the
production environment (override_settings could not show what DEBUG=0 turns on).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = (
    "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL",
)  # fmt: skip


def production_env(**extra: str) -> dict:
    """A production environment: a real payment provider (PAYMENT_PROVIDERS extended by tests.security.
    production_settings, as README says a deployment does), the manual payout provider, no development secret."""
    env = {key: value for key, value in os.environ.items() if key not in VARIABLES and not key.startswith("NETWORK_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.security.production_settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="shop.example.com,testserver",
        PAYMENT_PROVIDER="bank",
        PAYOUT_PROVIDER="manual",
        PAYMENTS_SANDBOX_SECRET=secrets.token_urlsafe(32),
        SITE_URL="https://shop.example.com",
        IDENTITY_KEYS=Fernet.generate_key().decode(),
        IDENTITY_INDEX_KEY=secrets.token_urlsafe(32),
    )
    env.update(extra)
    return env


def run(args: list[str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=production_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_no_warning_in_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_passes_with_no_warning_on_a_staging_deployment_with_the_sandbox_providers():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings",
        PAYMENT_PROVIDER="sandbox",
        PAYOUT_PROVIDER="sandbox",
        ALLOW_SANDBOX_PROVIDERS="1",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.test import Client
from django.test.utils import override_settings, setup_test_environment

setup_test_environment()
# collectstatic has not run here: the manifest storage production uses would refuse every {% static %}.
with override_settings(STORAGES={**settings.STORAGES,
                                 "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
    client = Client()
    plain = client.get("/", headers={"host": "shop.example.com"})
    home = client.get("/", secure=True, headers={"host": "shop.example.com"})
    language = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"}, secure=True,
                           headers={"host": "shop.example.com"})
def cookie(response, name):
    morsel = response.cookies.get(name)
    return None if morsel is None else {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"]),
                                        "samesite": morsel["samesite"]}
print(json.dumps({
    "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
    "status": home.status_code,
    "hsts": home.get("Strict-Transport-Security", ""),
    "frame": home.get("X-Frame-Options", ""),
    "csp": home.get("Content-Security-Policy", ""),
    "nosniff": home.get("X-Content-Type-Options", ""),
    "csrf_cookie": cookie(home, settings.CSRF_COOKIE_NAME),
    "language_cookie": cookie(language, settings.LANGUAGE_COOKIE_NAME),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "attribution_cookie_secure": settings.ATTRIBUTION_COOKIE_SECURE,
}))
"""


def production_probe() -> dict:
    result = run(["-c", PROBE])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_answers_over_https_only_with_hsts_and_no_framing():
    seen = production_probe()

    assert seen["plain_status"] == 301 and seen["plain_location"].startswith("https://shop.example.com/")
    assert seen["status"] == 200
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert seen["frame"] == "DENY"
    assert seen["nosniff"] == "nosniff"
    assert "frame-ancestors 'none'" in seen["csp"]
    assert "script-src 'self'" in seen["csp"]


def test_every_cookie_is_https_only_in_production():
    seen = production_probe()

    assert seen["csrf_cookie"]["secure"] is True
    assert seen["language_cookie"] == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert seen["session_cookie_secure"] is True and seen["session_cookie_httponly"] is True
    # shops.attribution sets the share-link cookie's Secure flag from this setting
    assert seen["attribution_cookie_secure"] is True


def test_clickjacking_protection_in_the_default_settings_too(client, db):
    response = client.get("/")

    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
