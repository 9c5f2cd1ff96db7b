"""Health endpoints for load balancers and orchestrators (issue #26), served without the page middleware
(core.machine: no session, language, CSRF or headers work on a probe that comes every second).

- `/healthz`: the process is alive and serves requests. Touches nothing else: a database outage must not make an
  orchestrator restart every web process (a liveness probe that fails restarts; a readiness probe that fails only
  takes the process out of the load balancer).
- `/readyz`: the process can do its work: the database answers `SELECT 1`, the cache stores and reads a key, the
  Celery broker accepts a connection (when there is one: the embedded default runs tasks in-process), and every
  migration is applied. 200 when all pass, 503 when one fails, with each check's state as JSON (or text with
  `Accept: text/plain`, OpenMetrics with `?format=openmetrics`). The checks are django-health-check's (4.x) and two
  of ours (the broker through Celery's own connection, whatever its transport; the migrations).

Failures say what failed and never how to reach it: no URL, password or host in the body.
"""

import dataclasses
import datetime
import time

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from config.celery import app
from core.machine import machine_endpoint


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis or RabbitMQ: Celery's own connection, so its transport and
    settings), within the timeout."""

    timeout = datetime.timedelta(seconds=3)

    def __repr__(self) -> str:
        return "Broker"

    def run(self) -> None:
        try:
            with app.connection_for_write(
                settings.CELERY_BROKER_URL, connect_timeout=self.timeout.total_seconds()
            ) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as error:  # kombu raises its transport's own errors: all mean "cannot reach it"
            raise ServiceUnavailable(f"cannot connect ({type(error).__name__})") from error


@dataclasses.dataclass
class Migrations(HealthCheck):
    """Every migration the code has is applied to the database. Once they are, they stay (the code does not change
    under a running process), so only the probes before that read the migration graph."""

    applied_in_this_process = False  # class-level: every probe of the process shares it

    def __repr__(self) -> str:
        return "Migrations"

    def run(self) -> None:
        if Migrations.applied_in_this_process:
            return
        connection = connections[DEFAULT_DB_ALIAS]
        try:
            executor = MigrationExecutor(connection)
            waiting = executor.migration_plan(executor.loader.graph.leaf_nodes())
        finally:
            connection.close()  # a probe's thread: its connection is not reused
        if waiting:
            raise ServiceUnavailable(f"{len(waiting)} migrations not applied")
        Migrations.applied_in_this_process = True


class ReadinessView(HealthCheckView):
    """django-health-check's view with our checks, answering 503 (not 500) when one fails: a load balancer's
    "not ready", never mistaken for an error of the application."""

    def get_checks(self):
        yield Database(alias=DEFAULT_DB_ALIAS)
        yield Cache(alias="default", timeout=datetime.timedelta(seconds=3))
        if settings.CELERY_BROKER_URL:
            yield Broker()
        yield Migrations()

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
        return response


_readiness = ReadinessView.as_view()


@machine_endpoint
@csrf_exempt
@never_cache
def healthz(request):
    """Liveness: this process answers. Nothing else is touched."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


@machine_endpoint
@csrf_exempt
def readyz(request):
    """Readiness (see the module's docstring). The machine middleware calls views synchronously: the library's
    view is async, so it runs in an event loop of its own here."""
    started = time.perf_counter()
    response = async_to_sync(_readiness)(request)
    if hasattr(response, "render"):  # the HTML page: a view's caller renders it, and here that is us
        response.render()
    response["Server-Timing"] = f"checks;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response
