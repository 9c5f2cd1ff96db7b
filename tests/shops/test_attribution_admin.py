"""Staff screens of issue #22: coupon codes switched off and on, the product form keeping a commission rate that
funds the discount, buyer bindings with the buyer's phone masked for staff who may not see contacts."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from shops.models import BuyerBinding, CouponCode, Product
from shops.services import (
    BuyerDetails,
    attribution_options_set,
    coupon_code_for_member,
    order_place,
    share_link_create,
)
from tests.factories import (
    MemberFactory,
    ProductFactory,
    UserFactory,
    inline_management_data,
    pay_order,
    shop_with_products,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def options(*, coupons=True, binding_days=0):
    attribution_options_set(
        binding_days=binding_days,
        binding_mode="keep",
        coupons_enabled=coupons,
        coupon_discount_rate=Decimal("0.0500"),
        own_code_allowed=False,
        policy_version=2,
    )


def test_staff_switch_a_code_off_and_on_and_the_history_says_so(admin_client):
    code = coupon_code_for_member(member=MemberFactory())
    url = reverse("admin:shops_couponcode_changelist")

    admin_client.post(url, {"action": "switch_off", ACTION_CHECKBOX_NAME: [code.pk], "index": "0"})
    assert CouponCode.objects.get(pk=code.pk).is_active is False
    admin_client.post(url, {"action": "switch_on", ACTION_CHECKBOX_NAME: [code.pk], "index": "0"})
    assert CouponCode.objects.get(pk=code.pk).is_active is True

    history = admin_client.get(reverse("admin:shops_couponcode_history", args=[code.pk])).content.decode()
    assert "Coupon code switched off." in history
    assert "Coupon code switched on." in history


def test_a_product_rate_below_the_coupon_discount_is_refused(admin_client):
    options()
    product = ProductFactory(commission_rate=Decimal("0.1000"))
    url = reverse("admin:shops_product_change", args=[product.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {
        **inline_management_data(page),
        "title_en": product.title,
        "description_en": product.description,
        "category": product.category_id,
        "price": "19.90",
        "stock": str(product.stock),
        "initial-stock": form["stock"].value(),
        "is_active": "on",
        "commission_rate": "0.0400",
    }

    refused = admin_client.post(url, data)

    assert refused.status_code == 200
    assert "take 5% off, paid from this commission" in refused.content.decode()
    assert Product.objects.get(pk=product.pk).commission_rate == Decimal("0.1000")
    # at the discount rate it is accepted; with coupons off any rate is
    assert admin_client.post(url, {**data, "commission_rate": "0.0500"}).status_code == 302
    options(coupons=False)
    assert admin_client.post(url, {**data, "commission_rate": "0.0100"}).status_code == 302


def test_buyer_bindings_mask_the_phone_for_staff_who_may_not_see_contacts(client, staff_user):
    options(coupons=False, binding_days=30)
    tea = ProductFactory()
    shop = shop_with_products(tea)
    link = share_link_create(owner=shop.owner)
    buyer = BuyerDetails(name="Wang Fang", phone="13900001111", email="", address="1 Nanjing Road")
    pay_order(order_place(shop=shop, items={tea.pk: 1}, buyer=buyer, sharer=shop.owner, share_link=link))
    assert BuyerBinding.objects.count() == 1
    url = reverse("admin:shops_buyerbinding_changelist")

    client.force_login(staff_user)  # a superuser may see contacts
    assert "phone:+8613900001111" in client.get(url).content.decode()

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_buyerbinding"))
    client.force_login(viewer)
    page = client.get(url).content.decode()
    assert "13900001111" not in page
    assert "phone:+861****11" in page
