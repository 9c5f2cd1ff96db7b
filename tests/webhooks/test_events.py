"""Which events go where: the domain apps' announcements (orders and withdrawals end to end, as they are sent today;
commission entries by the signal, sent by the test after the rows exist) become events once per fact, delivered to
the endpoints of the members they concern and to every staff endpoint, never to another member's."""

from decimal import Decimal

import pytest

from commissions.models import CommissionEntry
from commissions.signals import commission_entries_changed
from members.webhooks.models import Delivery, Event
from shops.models import Order
from tests.factories import MemberFactory, pay_order, place_order, shop_with_products
from tests.payouts.helpers import bank_account, credit, paid_withdrawal
from tests.webhooks.helpers import announce_commission, endpoint_for

pytestmark = pytest.mark.django_db


def _types(receiver) -> list[str]:
    return [request.payload["type"] for request in receiver.received if request.verified]


def test_a_paid_order_reaches_its_shop_owner_and_its_sharer_but_no_other_member(
    receiver, django_capture_on_commit_callbacks
):
    # given a shop, a sharer who is not its owner, and a stranger, each with an endpoint, and a staff endpoint
    shop = shop_with_products()
    owner, sharer, stranger = shop.owner, MemberFactory(), MemberFactory()
    owner_hook = endpoint_for(owner, receiver.url, ["order.paid"], receiver=receiver)
    sharer_hook = endpoint_for(sharer, receiver.url, ["order.paid"], receiver=receiver)
    stranger_hook = endpoint_for(stranger, receiver.url, ["order.paid"], receiver=receiver)
    staff_hook = endpoint_for(None, receiver.url, ["order.paid"], receiver=receiver)
    order = place_order(shop)
    Order.objects.filter(pk=order.pk).update(sharer=sharer)
    # when the buyer pays (the sandbox provider's signed webhook, as in production)
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(order)
    # then one event, delivered to the owner, the sharer and staff
    event = Event.objects.get()
    assert event.type == "order.paid"
    assert set(Delivery.objects.values_list("endpoint_id", flat=True)) == {owner_hook.pk, sharer_hook.pk, staff_hook.pk}
    assert not Delivery.objects.filter(endpoint=stranger_hook).exists()
    assert _types(receiver) == ["order.paid"] * 3
    data = receiver.received[0].payload["data"]["order"]
    assert data["number"] == order.number
    assert data["total"] == f"{order.total:.2f}"
    assert data["sharer_member_id"] == sharer.pk
    assert data["shop"] == {"slug": shop.slug, "owner_member_id": owner.pk}
    # and no buyer's contact details anywhere in what was sent
    body = receiver.received[0].body.decode()
    for private in ("Wang Fang", "13900001111", "Nanjing Road"):
        assert private not in body


def test_shipping_an_order_sends_no_order_paid_again(receiver, django_capture_on_commit_callbacks):
    from shops.services import order_mark_shipped

    shop = shop_with_products()
    endpoint_for(shop.owner, receiver.url, ["order.paid"], receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop))
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_shipped(order=order)
    assert _types(receiver) == ["order.paid"]


def test_a_paid_withdrawal_reaches_its_member_only(receiver, django_capture_on_commit_callbacks):
    member, stranger = MemberFactory(), MemberFactory()
    endpoint_for(member, receiver.url, ["payout.paid"], receiver=receiver)
    stranger_hook = endpoint_for(stranger, receiver.url, ["payout.paid"], receiver=receiver)
    credit(member, "50.00")
    bank_account(member)
    with django_capture_on_commit_callbacks(execute=True):
        withdrawal = paid_withdrawal(member, "20.00")
    assert withdrawal.status == "paid"
    assert _types(receiver) == ["payout.paid"]
    assert receiver.received[0].payload["data"]["payout"] == {
        "id": withdrawal.pk,
        "member_id": member.pk,
        "amount": "20.00",
        "status": "paid",
        "requested_at": withdrawal.requested_at.isoformat(),
        "paid_at": withdrawal.paid_at.isoformat(),
    }
    assert not Delivery.objects.filter(endpoint=stranger_hook).exists()


def test_commission_events_reach_only_the_beneficiary(receiver, django_capture_on_commit_callbacks):
    member, stranger = MemberFactory(), MemberFactory()
    endpoint_for(member, receiver.url, receiver=receiver)
    stranger_hook = endpoint_for(stranger, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        entry = announce_commission(member, "4.56")
        commission_entries_changed.send(sender=CommissionEntry, entry_ids=[entry.pk], change="available")
        commission_entries_changed.send(sender=CommissionEntry, entry_ids=[entry.pk], change="reversed")
    assert _types(receiver) == ["commission.created", "commission.available", "commission.reversed"]
    assert {request.payload["data"]["commission"]["member_id"] for request in receiver.received} == {member.pk}
    assert not Delivery.objects.filter(endpoint=stranger_hook).exists()


def test_a_reversal_entry_is_a_commission_reversed_event(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint_for(member, receiver.url, ["commission.reversed"], receiver=receiver)
    entry = credit(member, "-1.20", kind=CommissionEntry.Kind.CLAWBACK)
    with django_capture_on_commit_callbacks(execute=True):
        commission_entries_changed.send(sender=CommissionEntry, entry_ids=[entry.pk], change="created")
    assert _types(receiver) == ["commission.reversed"]
    commission = receiver.received[0].payload["data"]["commission"]
    assert (commission["kind"], commission["amount"]) == ("clawback", "-1.20")


def test_an_endpoint_gets_only_the_events_it_chose(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint_for(member, receiver.url, ["commission.available"], receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)  # created: not chosen
    assert receiver.received == []
    assert Event.objects.count() == 0


def test_nobody_listening_records_nothing(django_capture_on_commit_callbacks):
    member = MemberFactory()
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
        pay_order(place_order(shop_with_products()))
    assert Event.objects.count() == 0


def test_a_switched_off_endpoint_receives_nothing(receiver, django_capture_on_commit_callbacks):
    from members.webhooks.services import endpoint_set_active

    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    endpoint_set_active(endpoint=endpoint, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    assert receiver.received == []


def test_an_announcement_twice_is_one_event_and_one_delivery(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint_for(member, receiver.url, receiver=receiver)
    entry = credit(member, "2.00", status=CommissionEntry.Status.PENDING)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            commission_entries_changed.send(sender=CommissionEntry, entry_ids=[entry.pk], change="created")
    assert (Event.objects.count(), Delivery.objects.count(), len(receiver.received)) == (1, 1, 1)
    assert Decimal(receiver.received[0].payload["data"]["commission"]["amount"]) == Decimal("2.00")


def test_the_sweep_delivers_what_an_announcement_lost_once_and_not_the_past(
    receiver, django_capture_on_commit_callbacks
):
    from members.webhooks.services import webhook_events_sweep

    # given an entry written before the endpoint existed, and two after it whose announcements were lost
    member, stranger = MemberFactory(), MemberFactory()
    before = credit(member, "1.00", status=CommissionEntry.Status.PENDING)
    endpoint_for(member, receiver.url, receiver=receiver)
    lost = credit(member, "2.00", status=CommissionEntry.Status.PENDING)
    credit(stranger, "3.00", status=CommissionEntry.Status.PENDING)
    CommissionEntry.objects.filter(pk=before.pk).update(created_at=before.created_at.replace(year=2020))
    # when the sweep runs, twice
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_sweep() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_sweep() == 0
    # then the lost one arrived, once; the past and the stranger's did not
    assert [request.payload["data"]["commission"]["id"] for request in receiver.received] == [lost.pk]


def test_the_sweep_does_nothing_without_endpoints():
    from members.webhooks.services import webhook_events_sweep

    credit(MemberFactory(), "2.00", status=CommissionEntry.Status.PENDING)
    assert webhook_events_sweep() == 0
    assert Event.objects.count() == 0
