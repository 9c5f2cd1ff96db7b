"""The ledger announces the entries it writes after each writing transaction's commit, once per kind of change
(commissions.signals.commission_entries_changed): the split (created), the release (available), a refund (its
reversal or clawback entries created, the pending entries it voids reversed), and nothing when it rolls back."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from commissions.models import CommissionEntry
from commissions.services import commission_release_due
from commissions.signals import commission_entries_changed
from shops.models import Order
from shops.services import order_mark_completed, order_mark_shipped, order_refund
from tests.factories import default_commissions, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _default_plan(transactional_db):
    """Real commits (the announcements run after them): the default policy and plan, emptied by each flush."""
    default_commissions()


Entry = CommissionEntry


@pytest.fixture
def heard():
    sent = []

    def listen(sender, *, entry_ids, change, **kwargs):
        sent.append((change, sorted(entry_ids)))

    commission_entries_changed.connect(listen, dispatch_uid="test-heard-entries")
    yield sent
    commission_entries_changed.disconnect(dispatch_uid="test-heard-entries")


def _sale():
    chain = make_chain(3)
    return place_order(shop_with_products(owner=chain[-1]))


def test_the_split_announces_every_entry_it_wrote_once(heard):
    order = pay_order(_sale())
    assert heard == [("created", sorted(Entry.objects.filter(order=order).values_list("pk", flat=True)))]


def test_the_release_announces_the_entries_it_made_available(heard):
    order = pay_order(_sale())
    order_mark_shipped(order=Order.objects.get(pk=order.pk))
    order_mark_completed(order=Order.objects.get(pk=order.pk))
    heard.clear()
    commission_release_due(now=timezone.now() + timedelta(days=30))
    released = sorted(Entry.objects.filter(order=order, status=Entry.Status.AVAILABLE).values_list("pk", flat=True))
    assert released and heard == [("available", released)]
    heard.clear()
    commission_release_due(now=timezone.now() + timedelta(days=30))
    assert heard == []  # nothing more to release, nothing announced


def test_a_refund_announces_its_reversals_and_the_entries_it_voided(heard):
    order = pay_order(_sale())
    heard.clear()
    line = order.lines.first()
    order_refund(order=Order.objects.get(pk=order.pk), quantities={line.pk: line.quantity})
    created = sorted(
        Entry.objects.filter(order=order, kind__in=[Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK]).values_list(
            "pk", flat=True
        )
    )
    # the shares on hold and their reversals leave the balances together
    voided = sorted(Entry.objects.filter(order=order, status=Entry.Status.REVERSED).values_list("pk", flat=True))
    assert created and voided
    assert sorted(heard) == sorted([("created", created), ("reversed", voided)])


def test_a_rolled_back_release_announces_nothing(heard):
    order = pay_order(_sale())
    order_mark_shipped(order=Order.objects.get(pk=order.pk))
    order_mark_completed(order=Order.objects.get(pk=order.pk))
    heard.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        commission_release_due(now=timezone.now() + timedelta(days=30))
        raise RuntimeError("rolled back")
    assert heard == []
    assert not Entry.objects.filter(order=order, status=Entry.Status.AVAILABLE).exists()
