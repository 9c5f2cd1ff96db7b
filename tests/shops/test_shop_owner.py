"""A shop's owner changes only through an audited service with a reason, by staff holding shops.change_shop_owner
(issue #19, item 4).

Before: support staff could pick another owner on the shop's admin page, the next sale paid that member, and the only
trace was Django's change log.
"""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from networks.models import ExternalProduct, Network
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import ExternalListing, Order, ShareLink, Shop, ShopEvent
from shops.services import ShopError, share_link_create, shop_change_owner
from staff.groups import COMPLIANCE, GROUP_PERMISSIONS, SUPPORT
from tests.factories import (
    MemberFactory,
    ProductFactory,
    UserFactory,
    place_order,
    second_approves,
    shop_with_products,
)

pytestmark = pytest.mark.django_db


def _staff(group_name: str):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def _change_form_data(shop: Shop, **changes) -> dict:
    """What the shop's admin change form posts (no listings, no inline rows)."""
    data = {"name": shop.name, "slug": shop.slug, "description": shop.description, "is_open": "on"}
    for prefix in ("listings", "events"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0",
                 f"{prefix}-MAX_NUM_FORMS": "1000"}  # fmt: skip
    return data | changes


def _external_listing(shop: Shop) -> ExternalListing:
    network, _created = Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})
    product = ExternalProduct.objects.create(
        network=network, external_id="SB-1", title="Tea set", price=Decimal("99.00"), commission_rate=Decimal("0.1")
    )
    listing = ExternalListing.objects.create(shop=shop, product=product, tracking_url="https://example.com/t?sub=x")
    listing.share_link = share_link_create(owner=shop.owner, external_product=product, campaign="buy button")
    listing.save(update_fields=["share_link"])
    return listing


@pytest.fixture
def shop():
    return shop_with_products(ProductFactory(), slug="lis-tea")


def test_support_cannot_change_the_owner_on_the_shop_page(client, shop):
    # given: support staff, who may edit shops (close an abusive one, fix its name)
    client.force_login(_staff(SUPPORT))
    owner, other = shop.owner, MemberFactory()

    # when they post the shop's change form with another member as owner, and a new name
    response = client.post(
        reverse("admin:shops_shop_change", args=[shop.pk]),
        _change_form_data(shop, owner=str(other.pk), name="Li's tea house"),
    )

    # then the name is saved, the owner is not
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    shop.refresh_from_db()
    assert (shop.name, shop.owner_id) == ("Li's tea house", owner.pk)
    assert not ShopEvent.objects.exists()


def test_the_owner_field_is_read_only_for_superusers_too(client, shop, staff_user):
    client.force_login(staff_user)
    other = MemberFactory()

    page = client.get(reverse("admin:shops_shop_change", args=[shop.pk]))
    client.post(reverse("admin:shops_shop_change", args=[shop.pk]), _change_form_data(shop, owner=str(other.pk)))

    assert 'name="owner"' not in page.content.decode()
    assert reverse("admin:shops_shop_change_owner", args=[shop.pk]) in page.content.decode()
    assert Shop.objects.get(pk=shop.pk).owner_id != other.pk


def test_support_has_no_way_to_the_change_owner_page_or_action(client, shop):
    support = _staff(SUPPORT)
    client.force_login(support)
    other = MemberFactory()
    url = reverse("admin:shops_shop_change_owner", args=[shop.pk])

    assert "shops.change_shop_owner" not in GROUP_PERMISSIONS[SUPPORT]
    assert client.get(url).status_code == 403
    assert client.post(url, {"new_owner": other.invite_code, "reason": "asked"}).status_code == 403
    changelist = client.get(reverse("admin:shops_shop_changelist"))
    assert "change_owner" not in changelist.content.decode()
    action = client.post(
        reverse("admin:shops_shop_changelist"), {"action": "change_owner", ACTION_CHECKBOX_NAME: [shop.pk]}
    )
    assert url not in action.get("Location", "")
    assert Shop.objects.get(pk=shop.pk).owner_id == shop.owner_id
    assert not ShopEvent.objects.exists()


def test_staff_with_the_permission_give_the_shop_away_with_a_reason_and_the_next_sale_pays_the_new_owner(
    client, shop, staff_user
):
    # given: an order placed while the old owner had the shop, the old owner's links, an external product
    old_owner = shop.owner
    earlier = place_order(shop)
    link = share_link_create(owner=old_owner)
    external = _external_listing(shop)
    new_owner = MemberFactory()
    client.force_login(staff_user)
    url = reverse("admin:shops_shop_change_owner", args=[shop.pk])
    assert client.get(url).status_code == 200

    # when staff give the shop to the new owner, found by email, with a reason
    response = client.post(url, {"new_owner": new_owner.user.email.upper(), "reason": "Sold the business to Wang"})

    # then nothing has changed yet: a second staff member must approve it (four eyes)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:shops_shop_change", args=[shop.pk])
    assert Shop.objects.get(pk=shop.pk).owner_id == old_owner.pk
    assert not ShopEvent.objects.exists()
    assert "Waiting for a second approval" in client.get(url).content.decode()
    # when another staff member approves, the shop is theirs, recorded with who, from whom, to whom and why
    [approval] = second_approves("shops.shop_change_owner")
    assert approval.requested_by == staff_user
    assert Shop.objects.get(pk=shop.pk).owner_id == new_owner.pk
    event = ShopEvent.objects.get()
    assert (event.shop_id, event.kind, event.actor_id, event.old_owner_id, event.new_owner_id, event.reason) == (
        shop.pk, "owner", approval.decided_by_id, old_owner.pk, new_owner.pk, "Sold the business to Wang"
    )  # fmt: skip
    assert event.detail == {
        "old_owner": old_owner.invite_code,
        "new_owner": new_owner.invite_code,
        "share_links_switched_off": [link.code],  # the external product's buy link goes with its listing
        "external_listings_removed": 1,
    }
    # the old owner's links no longer credit them, the external product (their tracking id) is out
    assert not ShareLink.objects.filter(owner=old_owner, is_active=True).exists()
    assert not ExternalListing.objects.filter(shop=shop).exists()
    assert not ShareLink.objects.get(pk=external.share_link_id).is_active
    # the order placed before keeps its sharer; the next one pays the new owner
    assert Order.objects.get(pk=earlier.pk).sharer_id == old_owner.pk
    assert place_order(Shop.objects.get(pk=shop.pk)).sharer_id == new_owner.pk
    # the old owner may open a new shop
    assert Shop.objects.filter(owner=old_owner).count() == 0


@pytest.mark.parametrize("case", ["no reason", "same owner", "suspended", "has a shop", "inactive account"])
def test_refused_owner_changes_change_nothing(shop, staff_user, case):
    candidate = MemberFactory()
    reason = "handover"
    if case == "no reason":
        reason = "   "
    elif case == "same owner":
        candidate = shop.owner
    elif case == "suspended":
        member_set_status(member=candidate, status=Member.Status.SUSPENDED, actor=staff_user, reason="test")
    elif case == "has a shop":
        shop_with_products(ProductFactory(), owner=candidate)
    elif case == "inactive account":
        candidate.user.is_active = False
        candidate.user.save(update_fields=["is_active"])
    link = share_link_create(owner=shop.owner)

    with pytest.raises(ShopError):
        shop_change_owner(shop=shop, new_owner=candidate, actor=staff_user, reason=reason)

    assert Shop.objects.get(pk=shop.pk).owner_id == shop.owner_id
    assert ShareLink.objects.get(pk=link.pk).is_active
    assert not ShopEvent.objects.exists()


def test_a_refusal_on_the_page_is_a_form_error(client, shop, staff_user):
    taken = shop_with_products(ProductFactory()).owner
    client.force_login(staff_user)
    url = reverse("admin:shops_shop_change_owner", args=[shop.pk])

    unknown = client.post(url, {"new_owner": "NOBODY", "reason": "x"})
    has_shop = client.post(url, {"new_owner": taken.invite_code, "reason": "x"})
    no_reason = client.post(url, {"new_owner": taken.invite_code, "reason": ""})

    assert unknown.status_code == has_shop.status_code == no_reason.status_code == 400
    assert "No member has this invite code or email." in unknown.content.decode()
    assert "has a shop already; a member has one shop at most." in has_shop.content.decode()
    assert "This field is required." in no_reason.content.decode()
    assert Shop.objects.get(pk=shop.pk).owner_id == shop.owner_id
    assert not ShopEvent.objects.exists()


def test_the_owner_change_is_in_the_audit_log(client, shop, staff_user):
    new_owner = MemberFactory()
    shop_change_owner(shop=shop, new_owner=new_owner, actor=staff_user, reason="Account recovered by its owner")
    client.force_login(_staff(COMPLIANCE))

    page = client.get(reverse("staff:audit_log"), {"object_type": "shop", "object_id": shop.slug})

    text = page.content.decode()
    assert page.status_code == 200
    assert "Account recovered by its owner" in text
    assert f"owner {shop.owner.invite_code} → {new_owner.invite_code}" in text
    assert staff_user.email in text


def test_the_api_never_writes_the_owner(client, shop):
    other = MemberFactory()
    client.force_login(shop.owner.user)

    response = client.patch(
        reverse("members-api:shop"), {"owner": other.pk, "name": "Renamed"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert (Shop.objects.get(pk=shop.pk).owner_id, Shop.objects.get(pk=shop.pk).name) == (shop.owner_id, "Renamed")
