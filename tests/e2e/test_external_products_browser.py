"""External products on a shop page in a real browser at phone width: the sandbox network's pictures load under the
page's Content-Security-Policy, nothing is wider than the screen, and the buy button opens the network's product
page through our /l/ link; then the owner's "Other platforms" page fits the phone too."""

import pytest
from django.urls import reverse

from networks.models import ExternalProduct, Network
from networks.sandbox import SandboxNetwork
from networks.services import external_products_sync
from shops.services import external_listing_add
from tests.e2e.test_csp_browser import LISTEN
from tests.factories import PASSWORD, ShopFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 800}


@pytest.fixture
def sandbox_network(monkeypatch):
    """The sandbox network on a free loopback port, reached by get_connector("sandbox") (as tests/networks')."""
    with SandboxNetwork() as network:
        monkeypatch.setenv("NETWORK_SANDBOX_URL", network.url)
        monkeypatch.setenv("NETWORK_SANDBOX_APP_KEY", network.app_key)
        monkeypatch.setenv("NETWORK_SANDBOX_APP_SECRET", network.app_secret)
        monkeypatch.setenv("NETWORK_SANDBOX_TIMEOUT", "2")
        yield network


def test_a_buyer_on_a_phone_sees_external_products_and_buys_on_the_network(
    live_server, chromium, sandbox_network, tmp_path
):
    network, _created = Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})
    external_products_sync(network=network, pages=1)
    shop = ShopFactory()
    products = list(ExternalProduct.objects.order_by("external_id")[:3])
    for product in products:
        external_listing_add(shop=shop, product=product)
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.set_default_timeout(15_000)

    response = page.goto(f"{live_server.url}{reverse('shops:shop_home', args=[shop.slug])}")
    page.wait_for_load_state("networkidle")
    page.locator(".external-card img").last.scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('.external-card img')].every(i => i.naturalWidth > 0)")
    page.screenshot(path=str(tmp_path / "shop-375.png"), full_page=True)  # kept in tmp only

    assert response.status == 200
    assert page.evaluate("window.__cspViolations") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator(".external-card .network-badge").all_inner_texts() == ["Sandbox network"] * 3
    buy = page.get_by_role("link", name="Buy on Sandbox network").first
    box = buy.bounding_box()
    assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    with context.expect_page() as opened:
        buy.click()
    network_page = opened.value
    network_page.wait_for_load_state()
    assert network_page.url.startswith(f"{sandbox_network.url}/item/{products[0].external_id}")
    assert products[0].title in network_page.content()
    assert len(sandbox_network.clicks()) == 1

    # The owner's page, at the same width.
    page.goto(f"{live_server.url}{reverse('login')}")
    page.get_by_label("Email or phone").fill(shop.owner.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{reverse('members:dashboard')}")
    page.goto(f"{live_server.url}{reverse('members:my_shop_networks')}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(tmp_path / "networks-375.png"), full_page=True)
    assert page.evaluate("window.__cspViolations") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#in-my-shop .item").count() == 3
    context.close()
