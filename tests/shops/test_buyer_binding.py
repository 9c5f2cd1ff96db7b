"""Buyer binding (锁客, issue #22): a buyer who bought through a member's link or code stays with that member for the
policy's binding days; off by default; another link takes the buyer over only in "latest_link" mode."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from referrals.models import Member
from referrals.services import member_set_status
from shops.models import BuyerBinding, Order, OrderEvent
from shops.services import (
    BuyerDetails,
    attribution_options_set,
    coupon_code_for_member,
    order_place,
    share_link_create,
)
from tests.factories import ProductFactory, pay_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
BUYER = BuyerDetails(name="Wang Fang", phone="13900001111", email="", address="1 Nanjing Road, Shanghai")
# The same phone as typed another day: the binding follows the number, not its spelling.
SAME_BUYER = BuyerDetails(name="Wang F.", phone="+86 139-0000-1111", email="", address="1 Nanjing Road")
OTHER_BUYER = BuyerDetails(name="Li Lei", phone="13900002222", email="", address="2 Huaihai Road, Shanghai")


def binding(days=30, mode="keep", coupons=False):
    return attribution_options_set(
        binding_days=days,
        binding_mode=mode,
        coupons_enabled=coupons,
        coupon_discount_rate=D("0.0000"),
        own_code_allowed=False,
        policy_version=2,
    )


@pytest.fixture
def world(db):
    """Two members with shops and links (Ann and Bob), and a third shop (Cai's) where the buyer shops later."""
    tea = ProductFactory(price=D("20.00"), commission_rate=D("0.1000"))
    ann_shop, bob_shop, cai_shop = (shop_with_products(tea) for _ in range(3))
    ann, bob = ann_shop.owner, bob_shop.owner
    return {
        "tea": tea,
        "ann": ann,
        "bob": bob,
        "cai_shop": cai_shop,
        "ann_link": share_link_create(owner=ann),
        "bob_link": share_link_create(owner=bob),
    }


def buy(world, shop, buyer=BUYER, *, via=None, paid=True, user=None) -> Order:
    """An order of one tea in `shop`; `via` a member's link (as the checkout passes the cookie's attribution)."""
    order = order_place(
        shop=shop,
        items={world["tea"].pk: 1},
        buyer=buyer,
        sharer=via.owner if via else None,
        share_link=via,
        buyer_user=user,
    )
    return pay_order(order) if paid else order


def test_binding_is_off_by_default(world):
    buy(world, world["cai_shop"], via=world["ann_link"])

    later = buy(world, world["cai_shop"])

    assert (later.sharer, later.attribution) == (world["cai_shop"].owner, "shop")
    assert BuyerBinding.objects.count() == 0


def test_a_buyer_who_bought_through_a_link_stays_with_the_member(world):
    binding(days=30)
    first = buy(world, world["cai_shop"], via=world["ann_link"])
    bound = BuyerBinding.objects.get()
    assert (bound.buyer_key, bound.member, bound.order) == ("phone:+8613900001111", world["ann"], first)
    assert bound.expires_at - bound.started_at == timedelta(days=30)
    assert first.events.filter(kind=OrderEvent.Kind.NOTE, note__contains="bound").exists()

    # a later order in another member's shop, without a link, the phone typed differently
    later = buy(world, world["cai_shop"], SAME_BUYER)

    assert (later.sharer, later.share_link, later.attribution) == (world["ann"], None, "binding")
    # somebody else is not bound
    assert buy(world, world["cai_shop"], OTHER_BUYER).attribution == "shop"


def test_an_unpaid_order_binds_nobody(world):
    binding()
    buy(world, world["cai_shop"], via=world["ann_link"], paid=False)
    assert BuyerBinding.objects.count() == 0


def test_a_binding_expires(world):
    binding(days=7)
    buy(world, world["cai_shop"], via=world["ann_link"])
    # 7 days and a second later: the binding started that long ago
    ago = timedelta(days=7, seconds=1)
    BuyerBinding.objects.update(started_at=timezone.now() - ago, expires_at=timezone.now() - timedelta(seconds=1))

    later = buy(world, world["cai_shop"])

    assert (later.sharer, later.attribution) == (world["cai_shop"].owner, "shop")
    # a new link purchase after expiry ends the old binding as expired and starts a new one
    buy(world, world["cai_shop"], via=world["bob_link"])
    old, new = BuyerBinding.objects.order_by("pk")
    assert (old.end_reason, new.member, new.ended_at) == ("expired", world["bob"], None)


def test_in_keep_mode_another_link_does_not_take_the_buyer_over(world):
    binding(mode="keep")
    buy(world, world["cai_shop"], via=world["ann_link"])

    later = buy(world, world["cai_shop"], via=world["bob_link"])

    assert (later.sharer, later.share_link, later.attribution) == (world["ann"], None, "binding")
    assert list(BuyerBinding.objects.values_list("member", "ended_at")) == [(world["ann"].pk, None)]


def test_in_latest_link_mode_another_link_takes_the_buyer_over(world):
    binding(mode="latest_link")
    buy(world, world["cai_shop"], via=world["ann_link"])

    later = buy(world, world["cai_shop"], via=world["bob_link"])
    after = buy(world, world["cai_shop"])

    assert (later.sharer, later.attribution) == (world["bob"], "link")
    assert (after.sharer, after.attribution) == (world["bob"], "binding")
    ann_binding, bob_binding = BuyerBinding.objects.order_by("pk")
    assert (ann_binding.member, ann_binding.end_reason) == (world["ann"], "taken_over")
    assert (bob_binding.member, bob_binding.ended_at) == (world["bob"], None)


def test_a_coupon_code_binds_the_buyer_and_wins_over_a_binding(world):
    binding(mode="keep", coupons=True)
    buy(world, world["cai_shop"], via=world["ann_link"])
    bob_code = coupon_code_for_member(member=world["bob"])

    order = pay_order(
        order_place(shop=world["cai_shop"], items={world["tea"].pk: 1}, buyer=BUYER, coupon_code=bob_code.code)
    )

    # the code typed at checkout is the buyer's own choice; in keep mode Ann's binding stays
    assert (order.sharer, order.attribution) == (world["bob"], "coupon")
    assert BuyerBinding.objects.get(ended_at__isnull=True).member == world["ann"]


def test_a_signed_in_buyer_is_bound_as_a_user_as_well_as_by_phone(world, django_user_model):
    binding()
    user = django_user_model.objects.create_user(email="buyer@example.com", password="x")
    buy(world, world["cai_shop"], via=world["ann_link"], user=user)
    assert set(BuyerBinding.objects.values_list("buyer_key", flat=True)) == {
        f"user:{user.pk}",
        "phone:+8613900001111",
    }

    later = buy(world, world["cai_shop"], OTHER_BUYER, user=user)  # another phone, same account

    assert (later.sharer, later.attribution) == (world["ann"], "binding")


def test_a_binding_to_a_suspended_member_is_not_used(world):
    binding()
    buy(world, world["cai_shop"], via=world["ann_link"])
    member_set_status(member=world["ann"], status=Member.Status.SUSPENDED, actor=None, reason="test")

    later = buy(world, world["cai_shop"])

    assert (later.sharer, later.attribution) == (world["cai_shop"].owner, "shop")


def test_a_self_purchase_binds_nobody(world):
    binding()
    ann = world["ann"]
    ann.user.phone = "+8613900001111"
    ann.user.save(update_fields=["phone"])

    order = buy(world, world["cai_shop"], via=world["ann_link"])

    assert order.is_self_purchase
    assert BuyerBinding.objects.count() == 0


def test_turning_binding_off_stops_using_bindings_already_made(world):
    binding()
    buy(world, world["cai_shop"], via=world["ann_link"])
    binding(days=0)

    later = buy(world, world["cai_shop"])

    assert later.attribution == "shop"


def test_payments_applied_in_a_batch_bind_their_buyers_too(world, monkeypatch, django_capture_on_commit_callbacks):
    from shops import services
    from shops.payments.sandbox import build_webhook
    from shops.services import payment_notices_apply, payment_start, payment_webhook_receive

    # given: binding on, and two orders through Ann's and Bob's links whose payment notices wait for a worker's run
    binding(days=30)
    monkeypatch.setattr(services, "task_runs_in_process", lambda: False)
    monkeypatch.setattr(services, "payment_notices_requested", lambda **_kwargs: True)
    orders = [
        buy(world, world["cai_shop"], BUYER, via=world["ann_link"], paid=False),
        buy(world, world["cai_shop"], OTHER_BUYER, via=world["bob_link"], paid=False),
    ]
    for order in orders:
        payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
        body, headers = build_webhook(payment, "succeeded")
        with django_capture_on_commit_callbacks(execute=True):
            payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
    assert BuyerBinding.objects.count() == 0

    # when
    assert payment_notices_apply() == 2

    # then
    bound = dict(BuyerBinding.objects.values_list("buyer_key", "member"))
    assert bound == {"phone:+8613900001111": world["ann"].pk, "phone:+8613900002222": world["bob"].pk}
