"""Each pytest-xdist worker (`make test` runs two, `-n 2`) gets Redis databases of its own, as pytest-django gives
it a test database of its own (test_<name>_gw0, test_<name>_gw1).

The suite empties Redis databases as it goes: `cache.clear()` before every test (Django's Redis cache flushes its
database), the click counter's and the fault suite's tests flush theirs, and the Celery workers of the broker tests
take whatever arrives in the queues of their database. Two workers on the same databases would wipe each other's
cache in the middle of a test and could run each other's tasks against the wrong test database. So worker gwN moves
every Redis database index the run was given (CELERY_BROKER_URL, REDIS_URL, CLICKS_REDIS_URL when set, the fault
suite's FAULTS_BROKER_DB) up by N times the width of that block: given broker 0 and cache 1 (CI's), gw0 keeps 0 and
1 and gw1 uses 2 and 3; given 10, 11 and fault database 12, gw1 uses 13, 14 and 15. Redis has 16 databases (0-15)
unless configured otherwise: a block that does not fit is a usage error, before any test runs.

The environment is changed too, for the worker processes and servers the tests start (they inherit it), and the
settings, whose values were read from the environment before this runs (pytest-django loads them first).
"""

import os
from urllib.parse import urlsplit, urlunsplit

REDIS_SCHEMES = ("redis", "rediss")
REDIS_DATABASES = 16  # redis-server's default `databases`
URL_VARIABLES = ("CELERY_BROKER_URL", "REDIS_URL", "CLICKS_REDIS_URL")
FAULTS_BROKER_DB_DEFAULT = "6"  # tests/faults/injection.py's default


class RedisBlockError(Exception):
    pass


def worker_index(environ=os.environ) -> int | None:
    """0 for xdist's gw0, 1 for gw1 …; None outside xdist (or in its controller)."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") and worker[2:].isdigit() else None


def _database(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def _with_database(url: str, database: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def worker_redis_environment(index: int, environ=os.environ) -> dict[str, str]:
    """The variables worker `index` sets instead of the run's: each Redis database index moved up by a block."""
    urls = {
        name: environ[name]
        for name in URL_VARIABLES
        if environ.get(name) and urlsplit(environ[name]).scheme in REDIS_SCHEMES
    }
    databases = {name: _database(url) for name, url in urls.items()}
    faults = "CELERY_BROKER_URL" in urls  # the fault suite runs only with a Redis broker, on a database of its own
    if faults:
        databases["FAULTS_BROKER_DB"] = int(environ.get("FAULTS_BROKER_DB", FAULTS_BROKER_DB_DEFAULT))
    if not databases or index == 0:
        return {}
    width = max(databases.values()) - min(databases.values()) + 1
    moved = {name: database + index * width for name, database in databases.items()}
    if max(moved.values()) >= REDIS_DATABASES:
        given = ", ".join(f"{name} {database}" for name, database in sorted(databases.items()))
        raise RedisBlockError(
            f"xdist worker gw{index} needs Redis databases {min(moved.values())}-{max(moved.values())} "
            f"(the run's block moved up by {index} × {width}: {given}), past Redis's {REDIS_DATABASES}: give "
            "lower database indices (CELERY_BROKER_URL, REDIS_URL, FAULTS_BROKER_DB) or fewer workers (-n)"
        )
    changed = {name: _with_database(urls[name], moved[name]) for name in urls}
    if faults:
        changed["FAULTS_BROKER_DB"] = str(moved["FAULTS_BROKER_DB"])
    return changed


def isolate_worker_redis() -> None:
    """Point this xdist worker (environment and settings) at its own Redis databases; nothing outside xdist."""
    index = worker_index()
    if index is None:
        return
    changed = worker_redis_environment(index)
    if not changed:
        return
    from django.conf import settings
    from django.test.utils import override_settings

    overrides = {}
    for name in URL_VARIABLES:
        if name in changed and hasattr(settings, name):
            overrides[name] = changed[name]
    # CLICKS_REDIS_URL and the cache follow REDIS_URL unless they were given their own.
    if "REDIS_URL" in changed:
        given = os.environ["REDIS_URL"]
        if "CLICKS_REDIS_URL" not in changed and given == settings.CLICKS_REDIS_URL:
            overrides["CLICKS_REDIS_URL"] = changed["REDIS_URL"]
        caches = {alias: dict(options) for alias, options in settings.CACHES.items()}
        for options in caches.values():
            if options.get("LOCATION") == given:
                options["LOCATION"] = changed["REDIS_URL"]
        overrides["CACHES"] = caches
    os.environ.update(changed)  # Celery reads CELERY_BROKER_URL from the environment first, at each use
    # For the whole life of the worker; setting_changed rebuilds the cache handler.
    override_settings(**overrides).enable()
