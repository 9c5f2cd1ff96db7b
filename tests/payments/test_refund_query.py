"""A refund whose notification never came is repaired by asking the provider (shops.services.refund_sync):
WeChat Pay's GET /v3/refund/domestic/refunds/{out_refund_no} and Alipay's alipay.trade.fastpay.refund.query,
against the fakes, applied through the refund notification's path."""

from decimal import Decimal

import pytest

from shops.models import OrderEvent, Refund
from shops.payments.alipay import AlipayProvider
from shops.payments.base import ProviderError, RefundState, merchant_refund_number
from shops.payments.wechatpay import WeChatPayProvider
from shops.services import order_refund, refund_sync
from tests.payments.test_alipay import buyer_opens


def paid_refund(gateway, order, open_payment, provider: str, method: str) -> Refund:
    payment, action = open_payment(order, provider, method)
    if provider == "alipay":
        buyer_opens(action.url)
    gateway.buyer_pays(payment.reference)
    gateway.outbox.release()
    return order_refund(order=order, reason="broken")


def status(refund: Refund) -> str:
    return Refund.objects.get(pk=refund.pk).status


def test_a_wechat_pay_refund_whose_notification_is_lost_is_repaired_by_the_query(wechat, order, open_payment):
    refund = paid_refund(wechat, order, open_payment, "wechatpay", "native")
    assert refund.status == Refund.Status.PENDING
    assert refund_sync(refund=refund) == "refund still pending"  # PROCESSING at WeChat Pay

    wechat.complete_refund(merchant_refund_number(refund.idempotency_key))
    assert wechat.outbox.drop() == 1  # the REFUND.SUCCESS notification is lost

    assert refund_sync(refund=refund) == "refund succeeded"
    assert status(refund) == Refund.Status.SUCCEEDED
    assert refund_sync(refund=Refund.objects.get(pk=refund.pk)) == "refund already succeeded"


def test_a_refund_wechat_pay_could_not_complete_is_marked_failed_for_finance_by_the_query(wechat, order, open_payment):
    refund = paid_refund(wechat, order, open_payment, "wechatpay", "native")
    wechat.complete_refund(merchant_refund_number(refund.idempotency_key), status="ABNORMAL")
    wechat.outbox.drop()

    assert refund_sync(refund=refund) == "refund failed"

    assert status(refund) == Refund.Status.FAILED
    note = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.REFUND).latest("pk").note
    assert "could not return" in note and "handle it by hand" in note


def test_a_wechat_pay_refund_answer_with_another_amount_changes_nothing(wechat, order, open_payment):
    refund = paid_refund(wechat, order, open_payment, "wechatpay", "native")
    number = merchant_refund_number(refund.idempotency_key)
    wechat.complete_refund(number)
    wechat.outbox.drop()
    wechat.refunds[number].refund -= 1

    with pytest.raises(ProviderError, match="does not match"):
        refund_sync(refund=refund)
    assert status(refund) == Refund.Status.PENDING


def test_wechat_pay_refund_query_of_an_unknown_refund_is_a_provider_error(wechat, order, open_payment):
    payment, _action = open_payment(order, "wechatpay", "native")

    with pytest.raises(ProviderError, match="RESOURCE_NOT_EXISTS"):
        WeChatPayProvider().refund_query(payment, "rf" + "0" * 30)


def test_alipay_refund_query(alipay, order, open_payment):
    refund = paid_refund(alipay, order, open_payment, "alipay", "wap")
    number = merchant_refund_number(refund.idempotency_key)
    provider = AlipayProvider()

    assert provider.refund_query(refund.payment, number) == RefundState(status="succeeded", amount=Decimal("44.80"))
    # Alipay answers a refund it never made without its fields: not refunded
    assert provider.refund_query(refund.payment, "rf" + "0" * 30) == RefundState(status="failed")
    # Alipay's refunds succeed at once: nothing to ask
    assert refund_sync(refund=refund) == "refund already succeeded"


def test_alipay_refund_whose_notification_is_lost_is_repaired_by_the_query(alipay, order, open_payment):
    refund = paid_refund(alipay, order, open_payment, "alipay", "wap")
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.PENDING)  # as if the answer had said "wait"

    assert refund_sync(refund=Refund.objects.get(pk=refund.pk)) == "refund succeeded"
    assert status(refund) == Refund.Status.SUCCEEDED
