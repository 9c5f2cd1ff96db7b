"""The member tests use the API tests' fixtures (an API client, an owner with a shop, another member's shop) and the
network tests' (the sandbox network over HTTP, its products synced)."""

from tests.api.conftest import api_client, other_member_without_shop, other_shop, owner, shop  # noqa: F401 - fixtures
from tests.networks.conftest import sandbox_network, synced  # noqa: F401 - fixtures
