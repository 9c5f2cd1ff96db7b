"""A member's coupon code on their "My links" page (issue #22): shown with a copy button while codes are in use,
their own and nobody else's; made once; not offered to a suspended member; a code staff switched off says so."""

from decimal import Decimal

import pytest
from django.urls import reverse

from referrals.models import Member
from referrals.services import member_set_status
from shops.models import CouponCode
from shops.services import attribution_options_set, coupon_code_for_member, coupon_code_set_active
from tests.factories import MemberFactory

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
