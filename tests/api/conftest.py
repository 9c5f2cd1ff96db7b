import pytest
from rest_framework.test import APIClient

from accounts.services import token_create
from tests.factories import MemberFactory, ProductFactory, ShopFactory, shop_with_products


@pytest.fixture
def api_client():
    return APIClient()


def bearer(member) -> dict:
    """Headers for an API request as `member`, with a new token."""
    key = token_create(user=member.user, name="test").key
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def owner(db):
    return MemberFactory()


@pytest.fixture
def shop(owner):
    return shop_with_products(ProductFactory(), ProductFactory(), owner=owner)


@pytest.fixture
def other_shop(db):
    return shop_with_products(ProductFactory(), owner=MemberFactory())


@pytest.fixture
def other_member_without_shop(db):
    return MemberFactory()


__all__ = ["ShopFactory", "bearer"]
