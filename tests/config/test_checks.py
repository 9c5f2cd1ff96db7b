"""Production refuses development secrets and sandbox services (config/checks.py): `check --deploy` errors, and with
DEBUG=0 gunicorn's application, the Celery worker and beat do not start; ALLOW_SANDBOX_PROVIDERS=1 allows the sandbox
providers and network on a staging deployment, never the public webhook secret."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from config.checks import refuse_to_start_with_sandbox_settings, sandbox_refusals

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
NETWORK_SANDBOX = ("NETWORK_SANDBOX_URL", "NETWORK_SANDBOX_APP_KEY", "NETWORK_SANDBOX_APP_SECRET")


@pytest.fixture
def production(settings, monkeypatch):
    """Settings with nothing refused: a random webhook secret, real providers, no sandbox network."""
    settings.DEBUG = False
    settings.PAYMENTS_SANDBOX_SECRET = secrets.token_urlsafe(32)
    settings.PAYMENT_PROVIDERS = {
        **settings.PAYMENT_PROVIDERS,
        "bank": "tests.security.production_settings.BankProvider",
    }
    settings.PAYMENT_PROVIDER = "bank"
    settings.PAYOUT_PROVIDER = "manual"
    settings.ALLOW_SANDBOX_PROVIDERS = False
    settings.IDENTITY_KEYS = [Fernet.generate_key().decode()]
    settings.IDENTITY_INDEX_KEY = secrets.token_urlsafe(32)
    for name in NETWORK_SANDBOX:
        monkeypatch.delenv(name, raising=False)
    return settings


def refused_ids() -> list[str]:
    return [error.id for error in sandbox_refusals()]


def deploy_check_ids() -> list[str]:
    return [message.id for message in run_checks(include_deployment_checks=True) if message.id.startswith("cps.")]


def test_production_settings_have_no_refusal(production):
    assert refused_ids() == []
    assert deploy_check_ids() == []


@pytest.mark.parametrize("setting", ["IDENTITY_KEYS", "IDENTITY_INDEX_KEY"])
def test_the_public_identity_keys_are_refused_even_on_staging(production, setting):
    if setting == "IDENTITY_KEYS":
        production.IDENTITY_KEYS = [Fernet.generate_key().decode(), production.DEV_IDENTITY_KEY]  # mid-rotation too
    else:
        production.IDENTITY_INDEX_KEY = production.DEV_IDENTITY_INDEX_KEY
    assert refused_ids() == ["cps.E008"]
    production.ALLOW_SANDBOX_PROVIDERS = True
    assert refused_ids() == ["cps.E008"]


def test_the_public_webhook_secret_is_refused_even_on_staging(production):
    production.PAYMENTS_SANDBOX_SECRET = production.DEV_PAYMENTS_SANDBOX_SECRET
    assert refused_ids() == ["cps.E001"]

    production.ALLOW_SANDBOX_PROVIDERS = True
    assert refused_ids() == ["cps.E001"]
    assert deploy_check_ids() == ["cps.E001"]


@pytest.mark.parametrize(("setting", "error_id"), [("PAYMENT_PROVIDER", "cps.E002"), ("PAYOUT_PROVIDER", "cps.E003")])
def test_a_sandbox_provider_is_refused_unless_staging_allows_it(production, setting, error_id):
    setattr(production, setting, "sandbox")
    assert refused_ids() == [error_id]
    assert deploy_check_ids() == [error_id]

    production.ALLOW_SANDBOX_PROVIDERS = True
    assert refused_ids() == []


def test_the_sandbox_network_is_refused_unless_staging_allows_it(production, monkeypatch):
    for name in NETWORK_SANDBOX:
        monkeypatch.setenv(name, "http://127.0.0.1:8765" if name.endswith("URL") else "sandbox-app-secret")
    assert refused_ids() == ["cps.E004"]

    production.ALLOW_SANDBOX_PROVIDERS = True
    assert refused_ids() == []


def test_the_development_defaults_are_all_refused(production):
    production.PAYMENTS_SANDBOX_SECRET = production.DEV_PAYMENTS_SANDBOX_SECRET
    production.PAYMENT_PROVIDER = production.PAYOUT_PROVIDER = "sandbox"
    production.DEBUG = True  # where the sandbox network's built-in defaults apply

    assert refused_ids() == ["cps.E001", "cps.E002", "cps.E003", "cps.E004"]


def test_the_start_up_refusal_follows_production_not_the_test_runners_debug(production):
    production.PAYOUT_PROVIDER = "sandbox"
    production.IS_PRODUCTION = False  # the test runner's DEBUG=False (a worker a test starts in-process)
    refuse_to_start_with_sandbox_settings()

    production.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match=r"cps\.E003: PAYOUT_PROVIDER is 'sandbox'"):
        refuse_to_start_with_sandbox_settings()


# --- The processes, with DEBUG=0 and nothing else set --------------------------------------------------------------


def run(args: list[str], **extra: str) -> subprocess.CompletedProcess:
    unset = ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY", *NETWORK_SANDBOX)
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64), **extra)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_check_deploy_fails_on_the_development_defaults():
    result = run([sys.executable, "manage.py", "check", "--deploy"])

    assert result.returncode == 1
    for error_id in ("cps.E001", "cps.E002", "cps.E003"):
        assert f"({error_id})" in result.stderr
    assert "cps.E004" not in result.stderr  # with DEBUG=0 the sandbox network has no built-in settings


def test_the_web_application_refuses_to_start():
    result = run([sys.executable, "-c", "import config.wsgi"])

    assert result.returncode == 1
    assert "Refusing to start with development settings in production" in result.stderr
    assert "cps.E001" in result.stderr and "cps.E002" in result.stderr and "cps.E003" in result.stderr


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_the_celery_worker_and_beat_refuse_to_start(command, tmp_path):
    options = ["--pool=solo"] if command == "worker" else [f"--schedule={tmp_path / 'beat-schedule'}"]
    result = run([str(CELERY), "-A", "config", command, *options, "--loglevel=INFO"], CELERY_BROKER_URL="memory://")

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Refusing to start with development settings in production" in output
    assert "cps.E002" in output
    assert "Connected to" not in output and "ready." not in output


def test_a_staging_deployment_starts_with_a_random_webhook_secret():
    result = run(
        [sys.executable, "-c", "import config.wsgi; print('started')"],
        PAYMENTS_SANDBOX_SECRET=secrets.token_urlsafe(32),
        IDENTITY_KEYS=Fernet.generate_key().decode(),
        IDENTITY_INDEX_KEY=secrets.token_urlsafe(32),
        ALLOW_SANDBOX_PROVIDERS="1",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"
