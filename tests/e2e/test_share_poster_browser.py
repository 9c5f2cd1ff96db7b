"""A member shares a poster from a product page, in a real browser, at phone and desktop widths, in English and
Chinese: the product page's 分享赚 bar, the share page (link copied, QR code on screen, poster shown), the
long-press page, and the downloaded PNG whose QR code is the member's own link. Screenshots go to
artifacts/screenshots/ (kept by CI)."""

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from members.links import share_link_url
from shops.models import ProductMaterial, ShareLink
from tests.e2e.test_dashboard_flow import commission_terms  # noqa: F401 - fixture: the default plan and policy
from tests.factories import ProductFactory, shop_with_products
from tests.members.test_sharing import expected_earning, poster_qr_matches

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDTHS = (375, 1280)
HEIGHT = 800


def _product_with_picture(title: str):
    buffer = io.BytesIO()
    Image.new("RGB", (600, 600), (46, 125, 50)).save(buffer, format="PNG")
    return ProductFactory(
        title=title,
        price=Decimal("128.00"),
        commission_rate=Decimal("0.2000"),
        image=SimpleUploadedFile("oolong.png", buffer.getvalue(), content_type="image/png"),
    )


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": max(height, HEIGHT)})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": HEIGHT})


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_member_shares_a_poster_from_the_product_page(
    live_server,
    chromium,
    client,
    settings,
    commission_terms,  # noqa: F811
    language,
):
    settings.SITE_URL = live_server.url
    product = _product_with_picture("有机高山乌龙茶 Organic oolong")
    shop = shop_with_products(product, ProductFactory(title="Sesame crackers"), name="小明的茶铺")
    ProductMaterial.objects.create(product=product, text="春茶上新，高山云雾，一口回甘。Spring tea is here.")
    member = shop.owner
    client.force_login(member.user)
    earning = expected_earning(product)
    for width in WIDTHS:
        context = chromium.new_context(viewport={"width": width, "height": HEIGHT}, device_scale_factor=1)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        context.add_cookies(
            [
                {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                 "url": live_server.url},
                {"name": "django_language", "value": language, "url": live_server.url},
            ]
        )  # fmt: skip
        page = context.new_page()
        page.set_default_timeout(15_000)

        # The product page: what one unit earns, and a one-tap Share.
        page.goto(live_server.url + reverse("shops:product_detail", args=[shop.slug, product.pk]))
        bar = page.locator("#share-bar")
        assert bar.locator("[data-earn]").get_attribute("data-earn") == str(earning)
        assert page.locator("html").get_attribute("lang") == language
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"share-{language}-product-page")
        bar.locator("a.button").click()
        page.wait_for_url(f"**{reverse('members:share_product', args=[product.pk])}")

        # The share page: the link, copied with one tap; the QR code on screen; the poster shown.
        link = ShareLink.objects.get(owner=member, product=product)
        url = share_link_url(link)
        assert page.locator("#share-url").inner_text() == url
        page.locator("#share-link button[data-copy]").click()
        assert page.evaluate("navigator.clipboard.readText()") == url
        assert page.locator(".share-qr svg").is_visible()
        poster = page.locator("img.poster")
        poster.scroll_into_view_if_needed()
        page.wait_for_function("document.querySelector('img.poster').complete")
        assert page.evaluate("document.querySelector('img.poster').naturalWidth") == 750
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"share-{language}-share-page")

        # The long-press page, and the download: a PNG whose QR code is this member's link.
        page.locator("#share-poster a.button.secondary").click()
        page.wait_for_url(f"**{reverse('members:link_poster_page', args=[link.pk])}")
        page.wait_for_function("document.querySelector('img.poster').complete")
        assert page.evaluate("document.querySelector('img.poster').naturalWidth") == 750
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"share-{language}-poster-page")
        with page.expect_download() as download_info:
            page.locator("a[download]").click()
        png = Path(download_info.value.path()).read_bytes()
        assert Image.open(io.BytesIO(png)).size == (750, 1200)
        assert poster_qr_matches(png, url)
        if width == WIDTHS[0]:
            (SCREENSHOTS / f"share-{language}-poster.png").write_bytes(png)

        # The shop page (分享赚 on each card, "Share my shop" for its owner) and the catalogue picker.
        page.goto(live_server.url + reverse("shops:shop_home", args=[shop.slug]))
        assert page.locator(".card-earn").first.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"share-{language}-shop-page")
        page.goto(live_server.url + reverse("members:my_shop_catalogue"))
        assert page.locator(f'a[href="{reverse("members:share_product", args=[product.pk])}"]').is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"share-{language}-catalogue")

        # The invite page too, for the screenshots.
        page.goto(live_server.url + reverse("members:share_invite"))
        assert page.locator(".share-qr svg").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"share-{language}-invite-page")
        context.close()
