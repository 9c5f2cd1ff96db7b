"""A member whose commission is held for risk review sees "Under review" with a plain explanation, never the rule or
its evidence (issue #25); another member cannot see the entry at all."""

import pytest
from django.urls import reverse

from commissions.models import CommissionEntry, RiskFlag
from commissions.services.risk import RELEASE, risk_flag_resolve, risk_sighting_record
from shops.services import order_place
from tests.commissions.test_risk_review import STRANGER
from tests.factories import MemberFactory, ProductFactory, make_chain, pay_order, shop_with_products

pytestmark = pytest.mark.django_db


def test_held_commission_shows_under_review_without_the_rule(client, staff_user, django_capture_on_commit_callbacks):
    _paul, sara = make_chain(2)
    shop = shop_with_products(ProductFactory(), owner=sara)
    risk_sighting_record(member_id=sara.pk, device_key="dev-sara")
    order = order_place(shop=shop, items={shop.listings.get().product_id: 1}, buyer=STRANGER, device_key="dev-sara")
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(order)
    entry = CommissionEntry.objects.get(order=order, beneficiary=sara)
    client.force_login(sara.user)

    listing = client.get(reverse("members:commission_entries")).content.decode()
    detail = client.get(reverse("members:commission_entry_detail", args=[entry.pk])).content.decode()
    assert "Under review" in listing
    assert "Under review" in detail and "nothing is needed from you" in detail
    for secret in ("shared_identity", "share an identity", "devices", "dev-sara"):
        assert secret not in listing and secret not in detail
    # the API likewise: a flag, never the rule
    api_list = client.get(reverse("members-api:commission_entries")).json()
    api_detail = client.get(reverse("members-api:commission_entry_detail", args=[entry.pk])).json()
    assert [row["under_review"] for row in api_list["results"]] == [True]
    assert api_detail["under_review"] is True
    assert "shared_identity" not in str(api_list) + str(api_detail)

    # released by staff: an ordinary pending entry again
    risk_flag_resolve(flag=RiskFlag.objects.get(), action=RELEASE, actor=staff_user, reason="checked")
    assert "Under review" not in client.get(reverse("members:commission_entries")).content.decode()

    # another member gets a 404 for the entry
    client.force_login(MemberFactory().user)
    assert client.get(reverse("members:commission_entry_detail", args=[entry.pk])).status_code == 404
