"""Every member page and API operation that names an object by id answers another member with a 404, exactly like an
id that does not exist, and changes nothing: the link, the commission entry, the withdrawal, the shop's listings.

The pages' own tests check the same for their objects one at a time; this is the whole list in one place, so a new
page with an id in its address joins it."""

from decimal import Decimal

import pytest
from django.urls import reverse

from networks.models import ExternalProduct, Network
from payouts.models import Withdrawal
from payouts.services import withdrawal_request
from shops.models import ExternalListing, ShareLink, ShopListing
from shops.services import share_link_create
from tests.api.conftest import bearer
from tests.factories import MemberFactory, ProductFactory, ShopFactory, shop_with_products
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db


@pytest.fixture
def mine():
    """The owner's objects: a shop with two listings and an external one, a share link, an entry, a withdrawal."""
    shop = shop_with_products(ProductFactory(), ProductFactory())
    owner = shop.owner
    product = ExternalProduct.objects.create(
        network=Network.objects.get(code="sandbox"),
        external_id="ext-1",
        title="External product",
        price=Decimal("100.00"),
        commission_rate=Decimal("0.1000"),
    )
    bank_account(owner)
    credit(owner, "500.00")
    return {
        "link": share_link_create(owner=owner),
        "listing": shop.listings.order_by("position").last(),
        "external_listing": ExternalListing.objects.create(
            shop=shop, product=product, tracking_url="https://sandbox.example/t/1"
        ),
        "entry": credit(owner, "10.00"),
        "withdrawal": withdrawal_request(member=owner, amount=Decimal("300.00")),
    }


@pytest.fixture
def intruder():
    """Another member, with a shop of their own (so the shop pages do not just ask them to open one)."""
    member = MemberFactory()
    ShopFactory(owner=member)
    return member


def state(mine) -> tuple:
    return (
        list(ShareLink.objects.order_by("pk").values_list("pk", "is_active")),
        list(ShopListing.objects.order_by("pk").values_list("pk", "shop_id", "position", "is_featured")),
        list(ExternalListing.objects.order_by("pk").values_list("pk", "shop_id")),
        Withdrawal.objects.get(pk=mine["withdrawal"].pk).status,
    )


PAGES = [
    ("post", "members:link_deactivate", lambda mine: [mine["link"].pk], {}),
    ("get", "members:link_qr", lambda mine: [mine["link"].pk, "svg"], {}),
    ("get", "members:link_qr", lambda mine: [mine["link"].pk, "png"], {}),
    ("get", "members:link_poster", lambda mine: [mine["link"].pk], {}),
    ("get", "members:link_poster_page", lambda mine: [mine["link"].pk], {}),
    ("get", "members:commission_entry_detail", lambda mine: [mine["entry"].pk], {}),
    ("post", "members:withdrawal_cancel", lambda mine: [mine["withdrawal"].pk], {}),
    *[
        ("post", "members:my_shop_products", lambda mine: [], {"action": action, "id": "listing"})
        for action in ("up", "down", "feature", "unfeature", "remove")
    ],
    ("post", "members:my_shop_catalogue", lambda mine: [], {"action": "remove", "id": "listing"}),
    ("post", "members:my_shop_networks", lambda mine: [], {"action": "remove", "id": "external_listing"}),
]


@pytest.mark.parametrize(
    ("method", "name", "args", "data"),
    PAGES,
    ids=[f"{name}-{data.get('action', method)}" for method, name, _args, data in PAGES],
)
def test_another_members_object_is_a_404_on_every_page_and_nothing_changes(
    client, mine, intruder, method, name, args, data
):
    data = {key: mine[value].pk if key == "id" else value for key, value in data.items()}
    before = state(mine)
    client.force_login(intruder.user)

    response = getattr(client, method)(reverse(name, args=args(mine)), data)

    assert response.status_code == 404
    assert state(mine) == before


API = [
    ("post", lambda mine: f"/api/v1/links/{mine['link'].pk}/deactivate/", {}),
    ("get", lambda mine: f"/api/v1/commissions/{mine['entry'].pk}/", {}),
    ("post", lambda mine: f"/api/v1/payouts/withdrawals/{mine['withdrawal'].pk}/cancel/", {}),
    ("patch", lambda mine: f"/api/v1/shop/listings/{mine['listing'].pk}/", {"is_featured": True}),
    ("patch", lambda mine: f"/api/v1/shop/listings/{mine['listing'].pk}/", {"offset": -1}),
    ("delete", lambda mine: f"/api/v1/shop/listings/{mine['listing'].pk}/", {}),
]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    API,
    ids=["link-deactivate", "commission", "withdrawal-cancel", "listing-feature", "listing-move", "listing-remove"],
)
def test_another_members_object_is_a_404_in_the_api_and_nothing_changes(api_client, mine, intruder, method, path, data):
    before = state(mine)

    response = getattr(api_client, method)(path(mine), data, format="json", **bearer(intruder))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert state(mine) == before
