import pytest

from networks.connectors.sandbox import SandboxConnector
from networks.models import ExternalProduct, Network
from networks.sandbox import SandboxNetwork
from networks.services import external_products_sync


@pytest.fixture
def sandbox_network(monkeypatch):
    """The sandbox affiliate network, served over HTTP on a free loopback port for one test.

    The NETWORK_SANDBOX_* variables point at it, so `get_connector("sandbox")` (and the sync) reach it too."""
    with SandboxNetwork() as network:
        monkeypatch.setenv("NETWORK_SANDBOX_URL", network.url)
        monkeypatch.setenv("NETWORK_SANDBOX_APP_KEY", network.app_key)
        monkeypatch.setenv("NETWORK_SANDBOX_APP_SECRET", network.app_secret)
        monkeypatch.setenv("NETWORK_SANDBOX_TIMEOUT", "2")
        yield network


@pytest.fixture
def sandbox_connector(sandbox_network):
    """A connector speaking to `sandbox_network`, with a short timeout so failure tests stay fast."""
    return SandboxConnector(
        base_url=sandbox_network.url,
        app_key=sandbox_network.app_key,
        app_secret=sandbox_network.app_secret,
        timeout=2.0,
    )


@pytest.fixture
def synced(sandbox_network):
    """The sandbox's first 20 products, synced over HTTP."""
    sandbox = Network.objects.get(code="sandbox")
    external_products_sync(network=sandbox, pages=1)
    return list(ExternalProduct.objects.filter(network=sandbox).order_by("external_id"))
