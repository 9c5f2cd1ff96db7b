import os

import pytest

from tests.factories import MemberFactory, UserFactory
from tests.parallel import RedisBlockError, isolate_worker_redis


def pytest_configure(config):
    """Under pytest-xdist, this worker's own Redis databases (tests/parallel.py), before any test module is imported."""
    try:
        isolate_worker_redis()
    except RedisBlockError as error:
        raise pytest.UsageError(str(error)) from error


def pytest_collection_modifyitems(config, items):
    is_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://", "pgsql://"))
    has_broker = bool(os.environ.get("CELERY_BROKER_URL"))
    has_redis = bool(os.environ.get("REDIS_URL"))
    skip_postgres = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/db")
    skip_broker = pytest.mark.skip(reason="needs a Celery broker: set CELERY_BROKER_URL=redis://host:6379/0")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://host:6379/1")
    for item in items:
        if "postgres" in item.keywords and not is_postgres:
            item.add_marker(skip_postgres)
        if "broker" in item.keywords and not has_broker:
            item.add_marker(skip_broker)
        if "redis" in item.keywords and not has_redis:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_caches(settings):
    """Each test starts with an empty cache and a fresh in-process click counter (never a shared Redis)."""
    from django.core.cache import cache

    from shops.clicks import click_counter_reset

    settings.CLICKS_REDIS_URL = ""
    cache.clear()
    click_counter_reset()
    yield
    click_counter_reset()


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request in Chinese leaves Chinese active in this thread (LocaleMiddleware activates, nothing deactivates):
    each test starts in the default language, so what one test asked for never decides another's words."""
    from django.conf import settings as django_settings
    from django.utils import translation

    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _code_ceiling_preset(settings):
    """Tests run under the international preset, the code's own ceiling of three levels: most tests exercise the
    split, not a jurisdiction. The tests of the presets (tests/commissions/test_presets.py) choose theirs."""
    settings.COMPLIANCE_PRESET = "international"


@pytest.fixture(autouse=True)
def _members_placed_at_join(settings):
    """Joins place the new member in the nested sets before they return, as in the embedded default, whatever the
    broker settings: tests of the deferred placement switch this off themselves."""
    settings.REFERRALS_TREE_INDEX_INLINE = True


@pytest.fixture(autouse=True)
def _rules_change_at_once(settings):
    """Tests change the commission rules with effect from now, as they did before the notice period existed; the
    tests of the notice (tests/members/test_rules_page.py) set RULES_CHANGE_NOTICE_DAYS themselves."""
    settings.RULES_CHANGE_NOTICE_DAYS = 0


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Tasks run in-process, as in the embedded default, except in tests marked `broker` (a real worker)."""
    from config.celery import app

    if "broker" in request.keywords:
        yield
        return
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _live_server_closes_its_connections(request, monkeypatch):
    """Tests with Django's live server: its request threads close their database connections after each request.

    With persistent connections (CONN_MAX_AGE) every request thread would leave a session behind on PostgreSQL,
    and the test database could not be dropped at the end of the run. New connections read this settings dict.
    """
    if "live_server" in request.fixturenames:
        from django.db import connections

        monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)


@pytest.fixture(autouse=True)
def _site_url_is_the_live_server(request):
    """Tests with Django's live server: the links the site builds (webhooks, return addresses) point at it."""
    if "live_server" in request.fixturenames:
        settings = request.getfixturevalue("settings")
        settings.SITE_URL = request.getfixturevalue("live_server").url


@pytest.fixture(scope="session")
def gateway_keys():
    """The payment gateway fakes' five RSA-2048 key pairs (tests/payments/conftest.py's `gateways`), made once per test
    process: making one takes 0.1-0.4 s, and made for each test they were about a second of every test with the fakes.
    Each test still gets new fakes (new serial numbers, API v3 key, public key id, certificates, port and trades), and
    the five keys differ from one another. Here, not beside `gateways`: the modules that import that fixture see it."""
    from shops.payments.fakes.common import KeyPair

    return {name: KeyPair.generate() for name in ("merchant", "platform", "app", "alipay", "root")}


@pytest.fixture
def member_factory(db):
    return MemberFactory


@pytest.fixture
def user_factory(db):
    return UserFactory


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)
