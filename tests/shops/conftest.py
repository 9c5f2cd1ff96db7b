"""The storefront API tests (test_api.py) use the API tests' fixtures: an API client, an owner with a shop, another
member's shop."""

from tests.api.conftest import api_client, other_shop, owner, shop  # noqa: F401 - fixtures
