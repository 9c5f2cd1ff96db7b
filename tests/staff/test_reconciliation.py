"""The daily reconciliation (staff/reconciliation.py) against the gateway fakes' bills: each planted difference is
found (missing on either side, another amount, another status), a missed payment or transfer notification is
repaired by a query, a later bill resolves what was only late, check_ledger reports what is open, and the back
office lists, runs and resolves."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import F
from django.urls import reverse

from accounts.models import User
from payouts.models import Withdrawal
from shops.models import Order, Payment, Refund
from shops.payments.base import merchant_refund_number
from shops.services import order_refund
from staff.groups import FINANCE
from staff.ledger_check import check_reconciliation
from staff.models import ReconciliationDifference as Difference
from staff.models import ReconciliationRun as Run
from staff.reconciliation import CHINA, reconciliation_resolve, reconciliation_run, yesterday
from staff.tasks import reconciliation_run_task
from tests.factories import ProductFactory, place_order, shop_with_products
from tests.payments.conftest import alipay, gateways, http, open_payment, wechat, wechat_settings  # noqa: F401
from tests.payouts.conftest import rails  # noqa: F401 - the fixture
from tests.payouts.helpers import alipay_member, approved, send_batch, transfer_of, wechat_member

DAY = timedelta(days=1)
Kind = Difference.Kind
pytestmark = pytest.mark.usefixtures("rails")


def shift_back(gateways, days: int = 1) -> None:  # noqa: F811
    """Move what happened today, at the fakes and here, `days` back: the providers only have bills of days that are
    over."""
    delta = DAY * days
    wechatpay, alipay_ = gateways.wechatpay, gateways.alipay
    for trade in wechatpay.trades.values():
        if trade.success_time:
            trade.success_time = (datetime.fromisoformat(trade.success_time) - delta).isoformat()
    for refund in wechatpay.refunds.values():
        if refund.success_time:
            refund.success_time = (datetime.fromisoformat(refund.success_time) - delta).isoformat()
    for bill in wechatpay.transfer_bills.values():
        bill.created -= delta
        bill.updated -= delta

    def back(text: str) -> str:
        return (datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - delta).strftime("%Y-%m-%d %H:%M:%S") if text else ""

    for trade in alipay_.trades.values():
        trade.gmt_payment = back(trade.gmt_payment)
    for refund in alipay_.refunds.values():
        refund.gmt_refund = back(refund.gmt_refund)
    for transfer in alipay_.fund_transfers.values():
        transfer.trans_date = back(transfer.trans_date)
    Payment.objects.update(completed_at=F("completed_at") - delta)
    Refund.objects.update(created_at=F("created_at") - delta)
    Withdrawal.objects.update(paid_at=F("paid_at") - delta)


def paid_orders(gateway, open_payment, provider: str, method: str, prices: list[str]) -> list[Payment]:  # noqa: F811
    payments = []
    for price in prices:
        order = place_order(shop_with_products(ProductFactory(price=Decimal(price), stock=10)))
        payment, _action = open_payment(order, provider, method)
        gateway.buyer_pays(payment.reference)
        payments.append(payment)
    return payments


def found(run: Run) -> set[tuple[str, str, str]]:
    return set(run.differences.values_list("kind", "subject", "reference"))


def resolved(run: Run) -> set[str]:
    return set(run.differences.filter(resolved_at__isnull=False).values_list("reference", flat=True))


def test_wechatpay_reconciliation_finds_each_planted_difference_and_repairs_missed_notifications(
    gateways,  # noqa: F811
    open_payment,  # noqa: F811
):
    wechatpay = gateways.wechatpay
    # given a day of business: five payments (the last one's notification lost), two refunds ...
    payments = paid_orders(
        wechatpay, open_payment, "wechatpay", "native", ["10.00", "11.00", "12.00", "13.00", "14.00"]
    )
    assert wechatpay.outbox.take(reference=payments[4].reference)  # lost on its way
    wechatpay.outbox.release()
    refunds = [order_refund(order=payment.order, reason="broken") for payment in payments[:2]]
    for refund in refunds:
        wechatpay.complete_refund(merchant_refund_number(refund.idempotency_key))
    wechatpay.outbox.release()
    # ... and three transfers to members, confirmed in WeChat (the second one's notification lost)
    withdrawals = [approved(wechat_member(openid=f"oPayee{n:04}"), "30.00") for n in range(3)]
    send_batch()
    for n, withdrawal in enumerate(withdrawals):
        package = transfer_of(withdrawal).package_info
        params = {"mchId": wechatpay.mchid, "appId": wechatpay.appid, "package": package}
        wechatpay.payee_confirms(params, openid=f"oPayee{n:04}")
    assert wechatpay.outbox.take(reference=withdrawals[1].idempotency_key)
    wechatpay.outbox.release()
    shift_back(gateways)
    day = yesterday()
    # and the bills differ on purpose: a payment we never took, one left out, one with another amount, one
    # revoked, a refund left out, a transfer with another amount
    wechatpay.bill_extra_rows.append({"bill": "trade", "date": day, "out_trade_no": "NOTOURS0000001", "amount": 999})
    refund_number = merchant_refund_number(refunds[1].idempotency_key)
    wechatpay.bill_changes.update(
        {
            payments[1].reference: {"omit": True},
            payments[2].reference: {"amount": 1},
            payments[3].reference: {"state": "REVOKED"},
            refund_number: {"omit": True},
            withdrawals[2].idempotency_key: {"amount": 1},
        }
    )

    # when the day is reconciled
    run = reconciliation_run(provider="wechatpay", bill_date=day)

    # then each difference is found, and the two missed notifications are repaired by a query
    assert run.status == Run.Status.DIFFERENCES
    assert found(run) == {
        (Kind.MISSING_HERE, "payment", "NOTOURS0000001"),
        (Kind.MISSING_THERE, "payment", payments[1].reference),
        (Kind.AMOUNT, "payment", payments[2].reference),
        (Kind.STATUS, "payment", payments[3].reference),
        (Kind.STATUS, "payment", payments[4].reference),
        (Kind.MISSING_THERE, "refund", refund_number),
        (Kind.STATUS, "transfer", withdrawals[1].idempotency_key),
        (Kind.AMOUNT, "transfer", withdrawals[2].idempotency_key),
    }
    assert resolved(run) == {payments[4].reference, withdrawals[1].idempotency_key}
    assert Order.objects.get(pk=payments[4].order_id).status == Order.Status.PAID
    assert Withdrawal.objects.get(pk=withdrawals[1].pk).status == Withdrawal.Status.PAID
    amount = run.differences.get(kind=Kind.AMOUNT, subject="payment")
    assert (amount.our_amount, amount.their_amount) == (Decimal("12.00"), Decimal("0.01"))
    repaired = run.differences.get(reference=payments[4].reference)
    assert (repaired.our_status, repaired.their_status, repaired.repair) == ("pending", "SUCCESS", "query: order paid")
    assert run.lines_on_bill == 9  # 5 payments and the stranger, 1 refund, 2 transfers

    # and the ledger check reports the six still open
    result = check_reconciliation()
    assert result.count == 6
    assert any(f"payment {payments[2].reference}: Amounts differ (ours 12.00" in line for line in result.violations)

    # run again: the same open differences (not twice), the repaired ones kept as they were
    again = reconciliation_run(provider="wechatpay", bill_date=day)
    assert again.pk == run.pk
    assert found(again) == found(run) and resolved(again) == resolved(run)
    # one resolved by staff
    difference = again.differences.get(reference="NOTOURS0000001")
    assert reconciliation_resolve(difference=difference, note="a test order of the merchant", actor_label="f@x")
    assert check_reconciliation().count == 5


def test_a_day_that_matches_and_a_refund_found_on_the_next_days_bill(gateways, open_payment):  # noqa: F811
    wechatpay = gateways.wechatpay
    [payment] = paid_orders(wechatpay, open_payment, "wechatpay", "native", ["20.00"])
    wechatpay.outbox.release()
    refund = order_refund(order=payment.order, reason="changed mind")
    wechatpay.complete_refund(merchant_refund_number(refund.idempotency_key))
    wechatpay.outbox.release()
    shift_back(gateways, days=2)
    # the refund succeeded at WeChat Pay just after midnight: on the next day's bill
    number = merchant_refund_number(refund.idempotency_key)
    success = datetime.fromisoformat(wechatpay.refunds[number].success_time)
    wechatpay.refunds[number].success_time = (success + DAY).isoformat()
    first, second = yesterday() - DAY, yesterday()

    run = reconciliation_run(provider="wechatpay", bill_date=first)
    assert found(run) == {(Kind.MISSING_THERE, "refund", number)}
    assert check_reconciliation().count == 1

    next_run = reconciliation_run(provider="wechatpay", bill_date=second)

    assert next_run.status == Run.Status.MATCHED and found(next_run) == set()
    difference = run.differences.get()
    assert (difference.resolution, Run.objects.get(pk=run.pk).status) == (f"on the bill of {second}", "matched")
    assert check_reconciliation().count == 0


def test_a_refund_whose_notification_was_missed_is_repaired_by_a_query(gateways, open_payment):  # noqa: F811
    wechatpay = gateways.wechatpay
    [payment] = paid_orders(wechatpay, open_payment, "wechatpay", "native", ["25.00"])
    wechatpay.outbox.release()
    refund = order_refund(order=payment.order, reason="broken")
    number = merchant_refund_number(refund.idempotency_key)
    wechatpay.complete_refund(number)
    assert wechatpay.outbox.take(reference=number)  # the REFUND.SUCCESS notification is lost
    shift_back(gateways)

    run = reconciliation_run(provider="wechatpay", bill_date=yesterday())

    difference = run.differences.get()
    assert (difference.kind, difference.subject, difference.reference) == (Kind.STATUS, "refund", number)
    assert (difference.our_status, difference.repair) == ("pending", "query: refund succeeded")
    assert difference.resolution == "repaired by a query"
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.SUCCEEDED
    assert check_reconciliation().count == 0


def test_alipay_reconciliation_finds_differences_in_payments_refunds_and_transfers(gateways, open_payment):  # noqa: F811
    alipay_ = gateways.alipay
    payments = []
    for price in ("10.00", "11.00", "12.00"):
        order = place_order(shop_with_products(ProductFactory(price=Decimal(price), stock=10)))
        payment, action = open_payment(order, "alipay", "page")
        http(action.url)  # the buyer opens the cashier: the trade exists at Alipay from then on
        alipay_.buyer_pays(payment.reference)
        payments.append(payment)
    assert alipay_.outbox.take(reference=payments[2].reference)  # its notification is lost
    alipay_.outbox.release()
    refund = order_refund(order=payments[0].order, reason="broken")
    alipay_.outbox.release()
    paid, other = approved(alipay_member(), "30.00"), approved(alipay_member(), "20.00")
    send_batch()
    shift_back(gateways)
    day = yesterday()
    refund_number = merchant_refund_number(refund.idempotency_key)
    alipay_.bill_changes.update({payments[1].reference: {"amount": "1.00"}, other.idempotency_key: {"omit": True}})
    alipay_.bill_extra_rows.append({"bill": "signcustomer", "date": day, "reference": "STRANGER01", "amount": "5.00"})

    run = reconciliation_run(provider="alipay", bill_date=day)

    assert found(run) == {
        (Kind.AMOUNT, "payment", payments[1].reference),
        (Kind.STATUS, "payment", payments[2].reference),
        (Kind.MISSING_THERE, "transfer", other.idempotency_key),
        (Kind.MISSING_HERE, "transfer", "STRANGER01"),
    }
    assert resolved(run) == {payments[2].reference}  # repaired: the query found it paid
    assert Payment.objects.get(pk=payments[2].pk).status == Payment.Status.SUCCEEDED
    assert not run.differences.filter(reference__in=[refund_number, paid.idempotency_key]).exists()


def test_a_bill_not_made_yet_fails_the_run_and_check_ledger_says_so(gateways):  # noqa: F811
    today = datetime.now(CHINA).date()

    run = reconciliation_run(provider="wechatpay", bill_date=today)

    assert run.status == Run.Status.FAILED
    assert "trade bill refused (400 INVALID_REQUEST)" in run.error
    assert [
        line.startswith(f"reconciliation wechatpay {today}: could not run")
        for line in check_reconciliation().violations
    ] == [True]
    with pytest.raises(Exception, match="violation"):
        call_command("check_ledger")


def test_the_daily_task_runs_every_enabled_provider_and_retries_failed_days(gateways):  # noqa: F811
    Run.objects.create(provider="alipay", bill_date=yesterday() - DAY, status=Run.Status.FAILED, error="down")

    outcome = reconciliation_run_task()

    assert outcome == {
        f"wechatpay {yesterday()}": "matched",
        f"alipay {yesterday()}": "matched",
        f"alipay {yesterday() - DAY}": "matched",
    }


def test_without_a_rail_nothing_is_reconciled(settings):
    settings.PAYMENT_PROVIDER, settings.PAYMENT_RAILS = "sandbox", []
    settings.PAYOUT_PROVIDER, settings.PAYOUT_RAILS = "sandbox", []

    assert reconciliation_run_task() == {}
    assert not Run.objects.exists()


def test_finance_lists_filters_runs_and_resolves_differences(gateways, client):  # noqa: F811
    call_command("staff_groups")
    user = User.objects.create_user(email="finance@example.com", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE))
    client.force_login(user)
    run = Run.objects.create(provider="wechatpay", bill_date=yesterday() - DAY, status=Run.Status.DIFFERENCES)
    difference = run.differences.create(kind=Kind.MISSING_HERE, subject="payment", reference="NOTOURS1")
    run.differences.create(kind=Kind.AMOUNT, subject="refund", reference="rf1", resolved_at=run.started_at)

    changelist = reverse("admin:staff_reconciliationdifference_changelist")
    listed = client.get(changelist + "?open=yes&run__provider=wechatpay")
    assert listed.status_code == 200
    page = listed.content.decode()
    assert "NOTOURS1" in page and "rf1" not in page

    runs = client.get(reverse("admin:staff_reconciliationrun_changelist")).content.decode()
    assert "Reconcile a day" in runs

    # run a day now (queued; the embedded default runs it at once)
    response = client.post(
        reverse("admin:staff_reconciliationrun_reconcile"),
        {"provider": "wechatpay", "bill_date": yesterday().isoformat()},
    )
    assert response.status_code == 302
    assert Run.objects.get(provider="wechatpay", bill_date=yesterday()).status == Run.Status.MATCHED

    # resolve with a note
    data = {"action": "resolve", "_selected_action": [difference.pk], "apply": "1", "note": "merchant's own test"}
    assert client.post(changelist, data).status_code == 302
    difference.refresh_from_db()
    assert difference.resolution == "finance@example.com: merchant's own test"
