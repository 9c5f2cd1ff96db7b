"""Each event reaches the right recipients through the channels they chose, once, after the money's commit."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from commissions.services import commission_release_due
from members.notifications.models import Channel, Delivery, Event, Notification, NotificationEvent
from members.notifications.services import notification_settings_save
from payouts.services import withdrawal_approve, withdrawal_record_result, withdrawal_reject, withdrawal_request
from shops.models import Order
from shops.services import order_mark_completed, order_mark_shipped, order_refund
from tests.factories import MemberFactory, default_commissions
from tests.notifications.helpers import chain_sale, earners, emails_to, inbox, paid_chain_sale, texts_to
from tests.payouts.helpers import bank_account, credit, paid_withdrawal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _default_plan(transactional_db):
    """Real commits (the announcements run after them): the default policy and plan, emptied by each flush."""
    default_commissions()


BUYER_PHONE = "+8613900001111"  # tests.factories.BUYER's, stored in E.164


def test_a_paid_order_confirms_to_the_buyer_and_tells_each_earner_of_the_pending_commission():
    order, chain = paid_chain_sale(3)
    # the buyer gave a phone only: a text
    texts = texts_to(BUYER_PHONE)
    assert [t.template for t in texts] == [Event.ORDER_PAID]
    assert order.number in texts[0].text
    assert texts[0].params[0] == order.number
    # every member the split pays, and only they, hear of it in the inbox and by email
    paid = earners(order)
    assert len(paid) >= 2 and set(paid) <= {m.pk for m in chain}  # the sharer and their sponsor at least
    for member in chain:
        if member.pk not in paid:
            assert inbox(member) == [] and emails_to(member.user.email) == []
            continue
        [note] = inbox(member)
        assert note.event == Event.COMMISSION_PENDING
        assert str(paid[member.pk]) in note.title.replace("¥", "")
        assert note.read_at is None
        [email] = emails_to(member.user.email)
        assert email.subject == note.title
    outsider = MemberFactory()
    assert inbox(outsider) == []
    assert len(mail.outbox) == len(paid)


def test_shipping_is_told_to_the_buyer_with_the_courier_and_waybill_when_the_order_has_them(monkeypatch):
    order, _chain = paid_chain_sale(2)
    order_mark_shipped(order=Order.objects.get(pk=order.pk), courier="sf", waybill="SF1234567890")
    [shipped] = [t for t in texts_to(BUYER_PHONE) if t.template == Event.ORDER_SHIPPED]
    assert "on its way" in shipped.text
    assert "SF Express" in shipped.text and "SF1234567890" in shipped.text


def test_a_buyer_with_an_email_gets_the_confirmation_by_email_too():
    order, _chain = chain_sale(2)
    Order.objects.filter(pk=order.pk).update(buyer_email="fang@example.com")
    from tests.factories import pay_order

    pay_order(order)
    [email] = emails_to("fang@example.com")
    assert order.number in email.subject
    assert f"/orders/{order.number}/" in email.body
    assert len(texts_to(BUYER_PHONE)) == 1


def test_commission_available_and_reversed_reach_the_earners():
    order, chain = paid_chain_sale(3)
    refunded, rest = chain_sale(3)[0], None  # a second sale by another chain, refunded before release
    from tests.factories import pay_order

    refunded = pay_order(refunded)
    order_mark_shipped(order=Order.objects.get(pk=order.pk))
    order_mark_completed(order=Order.objects.get(pk=order.pk))
    commission_release_due(now=timezone.now() + timedelta(days=30))
    for member in chain:
        expected = [Event.COMMISSION_PENDING, Event.COMMISSION_AVAILABLE] if member.pk in earners(order) else []
        assert [n.event for n in inbox(member)] == expected
    line = refunded.lines.first()
    order_refund(order=Order.objects.get(pk=refunded.pk), quantities={line.pk: line.quantity})
    reversed_notes = Notification.objects.filter(event=Event.COMMISSION_REVERSED)
    assert reversed_notes.count() == len(earners(refunded))
    assert rest is None


def test_withdrawal_transitions_reach_the_member():
    member = MemberFactory()
    credit(member, "100.00")
    bank_account(member)
    staff = MemberFactory().user
    rejected = withdrawal_request(member=member, amount=Decimal("10.00"))
    withdrawal_reject(withdrawal=rejected, actor=staff, reason="Name does not match")
    paid = paid_withdrawal(member, "20.00", actor=staff)
    assert paid.status == "paid"
    failing = withdrawal_request(member=member, amount=Decimal("30.00"))
    withdrawal_approve(withdrawal=failing, actor=staff)
    from payouts.services import payout_batch_create

    payout_batch_create(provider_name="sandbox", actor=staff)
    withdrawal_record_result(withdrawal=failing, status="failed", reason="Account closed")
    events = [n.event for n in inbox(member)]
    assert events.count(Event.WITHDRAWAL_REJECTED) == 1
    assert events.count(Event.WITHDRAWAL_APPROVED) == 2
    assert events.count(Event.WITHDRAWAL_PAID) == 1
    assert events.count(Event.WITHDRAWAL_FAILED) == 1
    failed = inbox(member, Event.WITHDRAWAL_FAILED)[0]
    assert "Account closed" in failed.body and "30.00" in failed.title
    assert "Name does not match" in inbox(member, Event.WITHDRAWAL_REJECTED)[0].body


def test_a_member_gets_only_the_channels_they_chose():
    order, chain = chain_sale(2)
    sharer, sponsor = chain[-1], chain[0]
    sharer.user.phone = "+8613800138000"
    sharer.user.save()
    notification_settings_save(member=sharer, channels={Event.COMMISSION_PENDING: [Channel.SMS]}, language="")
    notification_settings_save(member=sponsor, channels={Event.COMMISSION_PENDING: []}, language="")
    from tests.factories import pay_order

    pay_order(order)
    assert inbox(sharer) == [] and emails_to(sharer.user.email) == []
    [text] = texts_to("+8613800138000")
    assert text.template == Event.COMMISSION_PENDING
    assert inbox(sponsor) == [] and emails_to(sponsor.user.email) == []
    # the events were still recorded (and fanned out): nothing waits for ever
    assert not NotificationEvent.objects.filter(fanned_out_at__isnull=True).exists()
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2  # the buyer's text and the sharer's


def test_messages_are_written_in_the_members_language(monkeypatch):
    from django.utils import translation

    from members.notifications import messages

    heard = []
    real = messages._render

    def spy(event, context):
        heard.append((event, translation.get_language()))
        return real(event, context)

    monkeypatch.setattr(messages, "_render", spy)
    order, chain = chain_sale(2)
    notification_settings_save(member=chain[0], channels={}, language="zh-hans")
    from tests.factories import pay_order

    pay_order(order)
    languages = {language for event, language in heard if event == Event.COMMISSION_PENDING}
    assert languages == {"zh-hans", "en"}  # the sponsor's inbox and email in Chinese, the sharer's in English
    assert ("order_paid", "en") in heard  # a buyer: the site's language
    # and outside the rendering the request's language is untouched
    assert translation.get_language() in ("en", "en-us")
