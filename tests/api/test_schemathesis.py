"""Schemathesis against the live OpenAPI schema: every operation, a fixed example budget, as a demo member.

In-process (Django's WSGI application, DEBUG off) on PostgreSQL, as in CI. Each operation gets the same small,
derandomised budget, so a run is repeatable; a failure names the operation and the minimal failing request.
Checks: no 5xx, every status code and content type documented, every body valid against its schema.
"""

import io

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import token_create
from referrals.models import Member

DEMO_MEMBER_EMAIL = "member1@example.com"  # has a shop, links and money in the demo data
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def in_process_connection():
    """Requests share the test's connection and transaction, as with Django's test client, which does the same:
    the WSGI handler would otherwise close the connection after each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def demo_api(db, settings, in_process_connection):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    settings.API_THROTTLE_RATES = {"token": "100000/minute", "user": "100000/minute", "anon": "100000/minute"}
    call_command("demo", stdout=io.StringIO())
    member = Member.objects.select_related("user").get(user__email=DEMO_MEMBER_EMAIL)
    return {"Authorization": f"Bearer {token_create(user=member.user, name='schemathesis').key}"}


def run_operation(operation, headers: dict, mode: GenerationMode, checks: list) -> None:
    """The operation's budget of generated requests; raises on the first failing one (hypothesis shrinks it)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers=headers, checks=checks)

    run()


# One test over every operation rather than schemathesis.pytest.from_fixture(...).parametrize(): that lazy
# loader reads a private pytest attribute that pytest 9 removed.
@pytest.mark.postgres
def test_every_operation_conforms_to_the_schema(demo_api):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    failures = []
    for operation in operations:
        # Valid requests: answered as documented. Invalid ones (wrong types, missing fields): never a 5xx.
        for mode, checks in ((GenerationMode.POSITIVE, CHECKS), (GenerationMode.NEGATIVE, [not_a_server_error])):
            try:
                run_operation(operation, demo_api, mode, checks)
            except (Exception, BaseExceptionGroup) as error:  # collect every failure, then report them all
                failures.append(f"{operation.label} ({mode.value}): {error}")

    assert not failures, "\n\n".join(failures)
