"""/healthz and /readyz (config/health.py): liveness touches nothing; readiness checks the database, the cache, the
broker and the migrations, answers 503 naming what failed, and never shows how to reach a service."""

import json

import pytest
from django.db import connection

from config.health import Migrations

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _probe_migrations_again(monkeypatch):
    """Each test reads the migrations itself (a process remembers they are applied once it has seen it)."""
    monkeypatch.setattr(Migrations, "applied_in_this_process", False)


def ready(client) -> tuple[int, dict]:
    response = client.get("/readyz", HTTP_ACCEPT="application/json")
    return response.status_code, json.loads(response.content)


def test_liveness_answers_without_a_query_a_session_or_a_cookie(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")
    assert not response.cookies and "no-cache" in response["Cache-Control"]


def test_ready_when_the_database_cache_and_migrations_are(client, settings):
    settings.CELERY_BROKER_URL = ""  # the embedded default: tasks in-process, no broker to check
    status, checks = ready(client)
    assert status == 200, checks
    assert checks == {"Database(alias='default')": "OK", "Cache(alias='default')": "OK", "Migrations": "OK"}


def test_not_ready_while_a_migration_is_not_applied(client, settings):
    settings.CELERY_BROKER_URL = ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name, applied FROM django_migrations WHERE app = 'payouts' ORDER BY id DESC")
        app_label, name, applied = cursor.fetchone()
        cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app_label, name])
    try:
        status, checks = ready(client)
        assert status == 503
        assert checks["Migrations"] == "Unavailable: 1 migrations not applied"
        assert checks["Database(alias='default')"] == "OK"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)", [app_label, name, applied]
            )
    assert ready(client)[0] == 200  # applied again: ready again


def test_not_ready_when_the_broker_cannot_be_reached_and_the_address_is_not_shown(client, settings):
    settings.CELERY_BROKER_URL = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz", HTTP_ACCEPT="text/plain")
    assert response.status_code == 503
    body = response.content.decode()
    assert "Broker: Unavailable: cannot connect" in body and "Migrations: OK" in body
    assert "s3cret" not in body and ":1/" not in body


@pytest.mark.broker
def test_ready_with_the_real_broker(client):
    status, checks = ready(client)
    assert status == 200, checks
    assert checks["Broker"] == "OK"


def test_the_page_for_people_lists_each_check(client, settings):
    settings.CELERY_BROKER_URL = ""
    response = client.get("/readyz", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"Migrations" in response.content
