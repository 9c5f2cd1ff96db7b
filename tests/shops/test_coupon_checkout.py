"""A member's coupon code at checkout (issue #22): the field, the discount on each line, and clear refusals."""

from decimal import Decimal

import pytest
from django.urls import reverse

from referrals.models import Member
from referrals.services import member_set_status
from shops.models import CouponCode, Order, OrderEvent
from shops.services import BuyerDetails, ShopError, attribution_options_set, coupon_code_for_member, order_place
from tests.factories import MemberFactory, ProductFactory, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
CONTACT = {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road, Shanghai"}


def coupons(*, enabled=True, rate="0.0500", own_code_allowed=False):
    return attribution_options_set(
        binding_days=0,
        binding_mode="keep",
        coupons_enabled=enabled,
        coupon_discount_rate=D(rate),
        own_code_allowed=own_code_allowed,
        policy_version=2,
    )


@pytest.fixture
def cart(client):
    """A shop with a 100.00 scarf (20 % commission) and one in the client's cart; returns (shop, scarf, checkout)."""
    scarf = ProductFactory(title="Wool scarf", price=D("100.00"), commission_rate=D("0.2000"), stock=10)
    shop = shop_with_products(scarf)
    client.post(reverse("shops:product_detail", args=[shop.slug, scarf.pk]), {"quantity": 1})
    return shop, scarf, reverse("shops:checkout", args=[shop.slug])


def test_without_the_option_there_is_no_code_field_and_a_code_changes_nothing(client, cart):
    _shop, _scarf, checkout = cart
    page = client.get(checkout)
    assert "coupon_code" not in page.context["form"].fields

    client.post(checkout, {**CONTACT, "coupon_code": "ANYTHING"})

    order = Order.objects.get()
    assert (order.total, order.attribution, order.coupon_code) == (D("100.00"), "shop", None)


def test_a_members_code_gives_the_discount_and_attributes_the_sale(client, cart):
    coupons()
    shop, _scarf, checkout = cart
    sara = MemberFactory()
    code = coupon_code_for_member(member=sara)
    assert "Coupon code (optional)" in client.get(checkout).content.decode()

    # typed in lower case with a space: still the code
    response = client.post(checkout, {**CONTACT, "coupon_code": f" {code.code[:4].lower()} {code.code[4:]}"})

    assert response.status_code == 302
    order = Order.objects.get()
    line = order.lines.get()
    assert (line.net_amount, line.discount, line.list_amount) == (D("95.00"), D("5.00"), D("100.00"))
    assert (order.total, order.sharer, order.share_link, order.attribution) == (D("95.00"), sara, None, "coupon")
    assert order.sharer != shop.owner
    placed = order.events.get(kind=OrderEvent.Kind.PLACED)
    assert code.code in placed.note
    # the buyer's order page shows what the code saved
    page = client.get(reverse("shops:order_detail", args=[order.number])).content.decode()
    assert f"Coupon code {code.code}: you saved ¥5.00." in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("NOSUCH23", "There is no coupon code “NOSUCH23”. Check it, or leave the field empty."),
        ("disabled", "can no longer be used."),
        ("suspended", "can no longer be used."),
    ],
)
def test_an_unknown_or_disabled_code_is_a_clear_error_and_nothing_is_ordered(client, cart, typed, message):
    coupons()
    _shop, scarf, checkout = cart
    member = MemberFactory()
    code = coupon_code_for_member(member=member)
    if typed == "disabled":
        CouponCode.objects.filter(pk=code.pk).update(is_active=False)
        typed = code.code
    elif typed == "suspended":
        member_set_status(member=member, status=Member.Status.SUSPENDED, actor=None, reason="test")
        typed = code.code

    response = client.post(checkout, {**CONTACT, "coupon_code": typed})

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["coupon_code"])
    assert Order.objects.count() == 0
    scarf.refresh_from_db()
    assert scarf.stock == 10


def test_a_members_own_code_follows_the_self_purchase_rule(client, cart):
    coupons()
    _shop, _scarf, checkout = cart
    sara = MemberFactory()
    sara.user.phone = "+8613900001111"
    sara.user.save(update_fields=["phone"])
    code = coupon_code_for_member(member=sara)

    # the default policy: self-purchase earns nothing, so her own code is refused
    refused = client.post(checkout, {**CONTACT, "coupon_code": code.code})
    assert refused.status_code == 400
    assert refused.context["form"].errors["coupon_code"] == [
        "This is your own coupon code: it cannot be used on your own orders."
    ]
    assert Order.objects.count() == 0

    # a policy that lets self-purchase earn: accepted, and the order is a self-purchase
    coupons(own_code_allowed=True)
    client.post(checkout, {**CONTACT, "coupon_code": code.code})
    order = Order.objects.get()
    assert (order.sharer, order.is_self_purchase, order.total) == (sara, True, D("95.00"))


def test_a_code_typed_after_staff_turn_coupons_off_is_refused(client, cart):
    coupons()
    _shop, _scarf, checkout = cart
    code = coupon_code_for_member(member=MemberFactory())
    client.get(checkout)
    coupons(enabled=False)

    # the field is gone from the form, so what a stale page posts is ignored, never a 500
    response = client.post(checkout, {**CONTACT, "coupon_code": code.code})

    assert response.status_code == 302
    assert Order.objects.get().coupon_code is None


def test_the_service_refuses_a_code_when_coupons_are_off(db):
    scarf = ProductFactory(price=D("100.00"), commission_rate=D("0.2000"))
    shop = shop_with_products(scarf)
    code = coupon_code_for_member(member=MemberFactory())
    buyer = BuyerDetails(name="Li", phone="13900002222", email="", address="2 Huaihai Road")
    with pytest.raises(ShopError) as refused:
        order_place(shop=shop, items={scarf.pk: 1}, buyer=buyer, coupon_code=code.code)
    assert "cannot be used at the moment" in refused.value.message_dict["coupon_code"][0]
    assert Order.objects.count() == 0


def test_each_member_has_one_code_and_asking_again_gives_the_same(db):
    member = MemberFactory()
    first = coupon_code_for_member(member=member)
    assert coupon_code_for_member(member=member) == first
    assert len(first.code) == 8
    assert coupon_code_for_member(member=MemberFactory()).code != first.code


def test_apply_shows_the_discount_before_anything_is_ordered(client, cart):
    coupons()
    _shop, scarf, checkout = cart
    code = coupon_code_for_member(member=MemberFactory())

    # only the code and a phone typed so far: no error for the empty name or address, nothing ordered
    page = client.post(checkout, {"phone": "13900001111", "coupon_code": code.code.lower(), "apply_coupon": "1"})

    assert page.status_code == 200
    content = page.content.decode()
    assert f"Coupon code {code.code}: you save ¥5.00." in content
    assert page.context["total"] == D("95.00")
    assert 'value="13900001111"' in content  # what the buyer typed is kept
    assert "errorlist" not in content
    assert Order.objects.count() == 0
    scarf.refresh_from_db()
    assert scarf.stock == 10


def test_apply_says_why_a_code_cannot_be_used(client, cart):
    coupons()
    _shop, _scarf, checkout = cart
    sara = MemberFactory()
    sara.user.phone = "+8613900001111"
    sara.user.save(update_fields=["phone"])
    own = coupon_code_for_member(member=sara)

    unknown = client.post(checkout, {"coupon_code": "NOSUCH23", "apply_coupon": "1"})
    mine = client.post(checkout, {"phone": "139 0000 1111", "coupon_code": own.code, "apply_coupon": "1"})

    assert unknown.status_code == 400
    assert "There is no coupon code “NOSUCH23”" in unknown.content.decode()
    assert unknown.context["total"] == D("100.00")
    assert mine.status_code == 400
    assert "This is your own coupon code" in mine.content.decode()
    assert Order.objects.count() == 0
