import os

import pytest

from tests.factories import MemberFactory, UserFactory


def pytest_collection_modifyitems(config, items):
    is_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://", "pgsql://"))
    has_broker = bool(os.environ.get("CELERY_BROKER_URL"))
    skip_postgres = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/db")
    skip_broker = pytest.mark.skip(reason="needs a Celery broker: set CELERY_BROKER_URL=redis://host:6379/0")
    for item in items:
        if "postgres" in item.keywords and not is_postgres:
            item.add_marker(skip_postgres)
        if "broker" in item.keywords and not has_broker:
            item.add_marker(skip_broker)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member_factory(db):
    return MemberFactory


@pytest.fixture
def user_factory(db):
    return UserFactory


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)
