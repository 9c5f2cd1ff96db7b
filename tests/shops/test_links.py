"""Share links: creation, the redirect, the attribution cookie, checkout attribution, sign-up, staff's list (the
owner's links page and QR codes are tests/members/test_links_pages.py)."""

import time

import pytest
from django.conf import settings
from django.urls import reverse

from referrals.models import Member
from referrals.services import member_set_status
from shops.models import Order, ShareLink, ShareLinkDailyStat
from shops.services import ShopError, clicks_flush, share_link_create, share_link_deactivate
from tests.factories import MemberFactory, ProductFactory, ShopFactory, shop_with_products

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile Safari/537.36"
COOKIE = settings.ATTRIBUTION_COOKIE


def visit(client, link, user_agent=BROWSER, ip="10.0.0.1"):
    return client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)


def buy(client, shop, **buyer):
    product = shop.listings.first().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    data = {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road"}
    data.update(buyer)
    client.post(reverse("shops:checkout", args=[shop.slug]), data)
    return Order.objects.order_by("-pk").first()


@pytest.fixture
def sharer_shop():
    return shop_with_products()


@pytest.fixture
def link(sharer_shop):
    return share_link_create(owner=sharer_shop.owner)


# --- creating links ----------------------------------------------------------------------


def test_a_member_links_to_their_shop_or_a_product_listed_in_it(sharer_shop):
    product = sharer_shop.listings.first().product

    to_shop = share_link_create(owner=sharer_shop.owner, campaign=" WeChat group ")
    to_product = share_link_create(owner=sharer_shop.owner, product=product)

    assert (to_shop.shop, to_shop.product, to_shop.campaign) == (sharer_shop, None, "WeChat group")
    assert to_product.product == product
    assert len(to_shop.code) == 10
    assert to_shop.code != to_product.code


def test_links_to_another_shops_product_or_without_a_shop_are_refused(sharer_shop):
    foreign = ProductFactory()
    no_shop = MemberFactory()

    with pytest.raises(ShopError) as not_listed:
        share_link_create(owner=sharer_shop.owner, product=foreign)
    with pytest.raises(ShopError) as without_shop:
        share_link_create(owner=no_shop)

    assert not_listed.value.code == "not_listed"
    assert without_shop.value.code == "no_shop"
    assert ShareLink.objects.count() == 0


# --- the redirect ---------------------------------------------------------------------------


def test_redirect_goes_to_the_target_and_sets_a_signed_cookie(client, sharer_shop, link):
    product = sharer_shop.listings.first().product
    product_link = share_link_create(owner=sharer_shop.owner, product=product)

    response = visit(client, link)
    to_product = visit(client, product_link)

    assert response.status_code == 302
    assert response["Location"] == reverse("shops:shop_home", args=[sharer_shop.slug])
    assert to_product["Location"] == reverse("shops:product_detail", args=[sharer_shop.slug, product.pk])
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert str(sharer_shop.owner_id) in cookie.value and cookie.value.count(":") >= 3  # value:timestamp:signature
    # never cached by a browser or proxy: every click must reach the counter
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert response["Expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_redirect_on_a_cache_hit_makes_no_database_query(client, link, django_assert_num_queries):
    visit(client, link)  # fills the cache

    with django_assert_num_queries(0):
        response = visit(client, link)

    assert response.status_code == 302


def test_unknown_and_switched_off_links_get_a_friendly_404_and_no_cookie(
    client, link, django_capture_on_commit_callbacks
):
    unknown = client.get(reverse("share_link", args=["nope123456"]), HTTP_USER_AGENT=BROWSER)
    visit(client, link)  # cached as active
    client.cookies.clear()
    with django_capture_on_commit_callbacks(execute=True):
        share_link_deactivate(link=link)
    switched_off = visit(client, link)

    assert unknown.status_code == 404
    assert "does not work any more" in unknown.content.decode()
    assert switched_off.status_code == 404
    assert COOKIE not in unknown.cookies and COOKIE not in switched_off.cookies


def test_a_redirect_that_read_the_link_before_it_was_switched_off_does_not_bring_it_back(
    client, link, django_capture_on_commit_callbacks
):
    # given: a redirect that read the link from the database (still active) but has not cached it yet
    from shops.clicks import click_counter, encode_target
    from shops.selectors import LINK_CACHE_SECONDS, share_link_lookup

    stale = share_link_lookup(link.code)

    # when: the link is switched off, then the slow redirect caches what it read
    with django_capture_on_commit_callbacks(execute=True):
        share_link_deactivate(link=link)
    click_counter().target_store(link.code, encode_target(stale.link_id, stale.owner_id, stale.url), LINK_CACHE_SECONDS)

    # then: the tombstone stays; the link answers 404
    assert visit(client, link).status_code == 404


def test_bots_and_link_previews_are_redirected_but_not_counted_and_get_no_cookie(client, link):
    for agent in ("facebookexternalhit/1.1", "Mozilla/5.0 (compatible; Googlebot/2.1)", "WhatsApp/2.23", ""):
        response = visit(client, link, user_agent=agent)
        assert response.status_code == 302
        assert COOKIE not in response.cookies

    assert clicks_flush() == 0
    assert not ShareLinkDailyStat.objects.exists()


def test_clicks_and_unique_visitors_are_flushed_once(client, link):
    visit(client, link, ip="10.0.0.1")
    visit(client, link, ip="10.0.0.1")
    visit(client, link, ip="10.0.0.2")

    first = clicks_flush()
    second = clicks_flush()

    stat = ShareLinkDailyStat.objects.get(link=link)
    assert (first, second) == (3, 0)
    assert (stat.clicks, stat.unique_visitors) == (3, 2)


def test_a_visitor_counts_once_per_day_and_again_the_next_day(client, link, monkeypatch):
    from datetime import date

    visit(client, link)
    visit(client, link)
    monkeypatch.setattr("django.utils.timezone.localdate", lambda *args: date(2030, 1, 2))
    visit(client, link)
    clicks_flush()

    assert sorted(ShareLinkDailyStat.objects.values_list("clicks", "unique_visitors")) == [(1, 1), (2, 1)]


def test_no_raw_ip_address_is_stored(client, link):
    from django.core.cache import cache

    visit(client, link, ip="203.0.113.77")
    clicks_flush()

    stored = repr(list(ShareLinkDailyStat.objects.values())) + repr(getattr(cache, "_cache", {}))
    assert "203.0.113.77" not in stored


# --- attribution at checkout ---------------------------------------------------------------------


def test_checkout_after_a_share_link_credits_the_sharer_and_the_link(client, link):
    other_shop = shop_with_products()

    visit(client, link)
    order = buy(client, other_shop)

    assert order.shop == other_shop
    assert order.sharer_id == link.owner_id
    assert order.share_link == link
    assert not order.is_self_purchase


def test_checkout_without_a_cookie_credits_the_shop_owner(client, sharer_shop):
    order = buy(client, sharer_shop)

    assert order.sharer_id == sharer_shop.owner_id
    assert order.share_link is None


def test_a_tampered_cookie_is_ignored(client, link, sharer_shop):
    impostor = MemberFactory()
    visit(client, link)
    genuine = client.cookies[COOKIE].value
    client.cookies[COOKIE] = genuine.replace(f"{link.owner_id}:", f"{impostor.pk}:", 1)

    order = buy(client, shop_with_products())

    assert order.sharer_id != impostor.pk
    assert order.share_link is None


def test_an_expired_cookie_is_ignored(client, link, monkeypatch):
    visit(client, link)
    later = time.time() + (settings.ATTRIBUTION_WINDOW_DAYS + 1) * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    order = buy(client, shop_with_products())

    assert order.share_link is None


def test_a_suspended_sharer_is_not_credited(client, link, staff_user):
    visit(client, link)
    member_set_status(member=link.owner, status=Member.Status.SUSPENDED, actor=staff_user)
    shop = shop_with_products()

    order = buy(client, shop)

    assert order.sharer_id == shop.owner_id


@pytest.mark.parametrize(("model", "winner"), [("last", "second"), ("first", "first")])
def test_last_or_first_click_wins_by_setting(client, settings, model, winner):
    settings.ATTRIBUTION_MODEL = model
    links = {
        "first": share_link_create(owner=ShopFactory().owner),
        "second": share_link_create(owner=ShopFactory().owner),
    }
    for shop in (links["first"].shop, links["second"].shop):
        from shops.services import shop_listing_add

        shop_listing_add(shop=shop, product=ProductFactory())

    visit(client, links["first"])
    visit(client, links["second"])
    order = buy(client, shop_with_products())

    assert order.share_link == links[winner]


def test_buying_through_your_own_link_is_flagged_as_self_purchase(client, link):
    client.force_login(link.owner.user)
    visit(client, link)

    order = buy(client, link.shop)

    assert order.is_self_purchase
    assert order.buyer_user == link.owner.user


def test_buying_with_the_sharers_own_email_is_flagged_even_signed_out(client, link):
    visit(client, link)

    order = buy(client, link.shop, phone="", email=link.owner.user.email.upper())

    assert order.is_self_purchase


# --- sign-up through a share link -----------------------------------------------------------------


def signup(client, path):
    data = {
        "email": "new@example.com",
        "first_name": "New",
        "password1": "a-long-passphrase",
        "password2": "a-long-passphrase",
    }
    client.post(path, data)
    return Member.objects.get(user__email="new@example.com")


def test_a_visitor_from_a_share_link_joins_under_the_sharer(client, link):
    visit(client, link)

    member = signup(client, reverse("members:join"))

    assert member.parent_id == link.owner_id
    assert member.join_source == Member.JoinSource.SHARE_LINK


def test_an_invite_link_wins_over_a_share_link_cookie(client, link):
    inviter = MemberFactory()
    visit(client, link)

    member = signup(client, reverse("members:join_with_code", args=[inviter.invite_code]))

    assert member.parent_id == inviter.pk


def test_joining_through_share_links_can_be_switched_off(client, link, settings):
    settings.REFERRALS_JOIN_VIA_SHARE_LINK = False
    visit(client, link)

    member = signup(client, reverse("members:join"))

    assert member.parent_id is None


def test_staff_see_links_in_admin_and_can_switch_them_off(client, staff_user, link, django_assert_max_num_queries):
    client.force_login(staff_user)
    changelist = reverse("admin:shops_sharelink_changelist")

    with django_assert_max_num_queries(8):
        listed = client.get(changelist)
    client.post(changelist, {"action": "switch_off", "_selected_action": [link.pk]})

    assert link.code in listed.content.decode()
    assert not ShareLink.objects.get(pk=link.pk).is_active
    assert client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=BROWSER).status_code == 404
