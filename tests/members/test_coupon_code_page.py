"""A member's coupon code on their "My links" page (issue #22): shown with a copy button while codes are in use,
their own and nobody else's; made once; not offered to a suspended member; a code staff switched off says so."""

from decimal import Decimal

import pytest
from django.urls import reverse

from commissions.models import CommissionEntry
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import CouponCode
from shops.services import (
    BuyerDetails,
    attribution_options_set,
    coupon_code_for_member,
    coupon_code_set_active,
    order_place,
)
from tests.factories import MemberFactory, ProductFactory, pay_order, shop_with_products

pytestmark = pytest.mark.django_db


def coupons(enabled=True):
    attribution_options_set(
        binding_days=0,
        binding_mode="keep",
        coupons_enabled=enabled,
        coupon_discount_rate=Decimal("0.0500"),
        own_code_allowed=False,
        policy_version=2,
    )


def test_no_code_while_coupons_are_off(client, shop):
    client.force_login(shop.owner.user)

    page = client.get(reverse("members:links"))

    assert page.status_code == 200
    assert page.context["coupon"] is None
    assert 'id="coupon-code"' not in page.content.decode()
    assert CouponCode.objects.count() == 0


def test_the_member_sees_their_own_code_with_a_copy_button_and_the_discount(client, shop):
    coupons()
    client.force_login(shop.owner.user)

    first = client.get(reverse("members:links")).content.decode()
    again = client.get(reverse("members:links")).content.decode()

    code = CouponCode.objects.get(owner=shop.owner).code
    assert f'data-copy="{code}"' in first
    assert "gets 5% off" in first
    assert first.count(code) == again.count(code) >= 2  # the same code, made once
    assert CouponCode.objects.count() == 1


def test_another_member_sees_their_own_code_never_mine(client, shop):
    coupons()
    mine = coupon_code_for_member(member=shop.owner)
    other = MemberFactory()
    client.force_login(other.user)

    page = client.get(reverse("members:links")).content.decode()

    assert mine.code not in page
    assert CouponCode.objects.get(owner=other).code in page


def test_a_suspended_member_is_not_given_a_code(client, shop):
    coupons()
    member_set_status(member=shop.owner, status=Member.Status.SUSPENDED, actor=None, reason="test")
    client.force_login(shop.owner.user)

    client.get(reverse("members:links"))

    assert CouponCode.objects.count() == 0


def test_a_code_staff_switched_off_says_buyers_cannot_use_it(client, shop):
    coupons()
    code = coupon_code_set_active(code=coupon_code_for_member(member=shop.owner), is_active=False)
    client.force_login(shop.owner.user)

    page = client.get(reverse("members:links")).content.decode()

    assert "Staff have switched this code off" in page
    assert f'data-copy="{code.code}"' not in page


def test_the_commission_of_a_coupon_sale_explains_the_discount_and_is_nobody_elses(
    client, shop, django_capture_on_commit_callbacks
):
    coupons()
    scarf = ProductFactory(price=Decimal("100.00"), commission_rate=Decimal("0.2000"))
    elsewhere = shop_with_products(scarf)
    code = coupon_code_for_member(member=shop.owner)
    buyer = BuyerDetails(name="Li", phone="13900002222", email="", address="2 Huaihai Road")
    order = order_place(shop=elsewhere, items={scarf.pk: 1}, buyer=buyer, coupon_code=code.code)
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(order)
    entry = CommissionEntry.objects.get(order=order, beneficiary=shop.owner)
    assert (entry.base, entry.amount) == (Decimal("15.00"), Decimal("12.00"))
    url = reverse("members:commission_entry_detail", args=[entry.pk])

    client.force_login(shop.owner.user)
    page = client.get(url).content.decode()
    assert "The buyer used a coupon code and got ¥5.00 off this item" in page

    client.force_login(elsewhere.owner.user)
    assert client.get(url).status_code == 404
