"""The owner's links page (/dashboard/links/) and QR codes: create, list with statistics, switch off; another
member's link is a 404."""

import pytest
from django.urls import reverse

from shops.models import Order, ShareLink
from shops.services import clicks_flush, share_link_create
from tests.factories import MemberFactory, ProductFactory, ShopFactory, UserFactory, pay_order, shop_with_products
from tests.shops.test_links import buy, visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def sharer_shop():
    return shop_with_products()


@pytest.fixture
def link(sharer_shop):
    return share_link_create(owner=sharer_shop.owner)


def test_links_page_creates_lists_with_stats_and_switches_off(client, sharer_shop, django_assert_max_num_queries):
    client.force_login(sharer_shop.owner.user)
    product = sharer_shop.listings.first().product
    client.post(reverse("members:links"), {"product": product.pk, "campaign": "Moments"})
    client.post(reverse("members:links"), {"product": "", "campaign": ""})
    links = list(ShareLink.objects.order_by("pk"))
    anonymous = client.__class__()
    for _ in range(3):
        visit(anonymous, links[0], ip="10.9.9.9")
    pay_order(buy(anonymous, sharer_shop))
    buy(anonymous, sharer_shop)  # unpaid: not a sale
    clicks_flush()

    with django_assert_max_num_queries(8):
        page = client.get(reverse("members:links"))
    client.post(reverse("members:link_deactivate", args=[links[1].pk]))

    row = next(link for link, _url in page.context["rows"] if link.pk == links[0].pk)
    paid = Order.objects.filter(share_link=links[0], paid_at__isnull=False).get()
    assert (row.clicks, row.unique_visitors, row.order_count, row.sales) == (3, 1, 1, paid.total)
    assert "100%" in page.content.decode()
    assert f"/l/{links[0].code}" in page.content.decode()
    assert not ShareLink.objects.get(pk=links[1].pk).is_active


def test_links_page_refuses_a_product_from_another_shop(client, sharer_shop):
    client.force_login(sharer_shop.owner.user)

    response = client.post(reverse("members:links"), {"product": ProductFactory().pk})

    assert response.status_code == 400
    assert ShareLink.objects.count() == 0


def test_qr_codes_come_as_svg_and_png(client, link):
    client.force_login(link.owner.user)

    svg = client.get(reverse("members:link_qr", args=[link.pk, "svg"]))
    png = client.get(reverse("members:link_qr", args=[link.pk, "png"]))
    invite = client.get(reverse("members:invite_qr", args=["png"]))

    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert invite.content.startswith(b"\x89PNG")


def test_another_member_cannot_see_switch_off_or_get_the_qr_of_my_link(client, link):
    intruder = MemberFactory()
    ShopFactory(owner=intruder)
    client.force_login(intruder.user)

    listed = client.get(reverse("members:links"))
    qr = client.get(reverse("members:link_qr", args=[link.pk, "png"]))
    off = client.post(reverse("members:link_deactivate", args=[link.pk]))

    assert link.code not in listed.content.decode()
    assert (qr.status_code, off.status_code) == (404, 404)
    assert ShareLink.objects.get(pk=link.pk).is_active


def test_links_page_needs_a_login(client):
    assert client.get(reverse("members:links")).status_code == 302


def test_user_without_membership_gets_no_invite_qr(client):
    client.force_login(UserFactory())

    assert client.get(reverse("members:invite_qr", args=["svg"])).status_code == 404
