"""Shops migration 0015 (issue #22) says how orders placed before it were attributed: through a link, or the shop's
owner. Forward on data, then back and forward again."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from shops.models import Order
from shops.services import share_link_create
from tests.factories import MemberFactory, place_order, shop_with_products

BEFORE = [("shops", "0014_order_shared_paid_at_index")]
AFTER = [("shops", "0015_coupon_codes_and_buyer_binding")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


@pytest.mark.django_db(transaction=True)
def test_earlier_orders_are_attributed_to_a_link_or_to_the_shops_owner():
    # given: three orders, made with the current models (the columns 0015 adds get their defaults), then the schema
    # taken back to before 0015 with the orders in it
    shop = shop_with_products()
    by_owner = place_order(shop)
    by_link, by_sharer = place_order(shop), place_order(shop)
    Order.objects.filter(pk=by_link.pk).update(share_link=share_link_create(owner=shop.owner))
    Order.objects.filter(pk=by_sharer.pk).update(sharer=MemberFactory())
    migrate(BEFORE)

    # when
    migrate(AFTER)

    # then
    after = MigrationExecutor(connection).loader.project_state(AFTER).apps.get_model("shops", "Order")
    assert dict(after.objects.values_list("pk", "attribution")) == {
        by_owner.pk: "shop",
        by_link.pk: "link",
        by_sharer.pk: "link",
    }
    assert after.objects.get(pk=by_owner.pk).total > Decimal("0")
    migrate(BEFORE)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
