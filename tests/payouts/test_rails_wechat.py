"""WeChat Pay 商家转账 as a payout rail (payouts/providers/wechat_transfer.py) against the local fake: a transfer
waits for the member's confirmation in WeChat, then is paid, expires, fails or is cancelled; notifications are
verified, applied once and in any order, and repaired by a query when they never come; a batch sent again after a
crash pays nobody twice."""

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry
from payouts.models import PayoutBatch, Transfer, Withdrawal, WithdrawalEvent
from payouts.selectors import member_balance
from payouts.services import payout_batches_run, payout_transfers_sync
from shops.models import WebhookEvent
from shops.payments.fakes.common import KeyPair
from shops.payments.fakes.wechatpay import WeChatPayError
from tests.payments.conftest import http
from tests.payouts.helpers import OPENID, approved, fresh, send_batch, transfer_of, wechat_member

Status = Withdrawal.Status
pytestmark = pytest.mark.usefixtures("rails")


def notify_url(live_server) -> str:
    return live_server.url + reverse("payouts:transfer_notification", args=["wechat_transfer"])


def confirm(wechat, withdrawal, openid=OPENID):
    """The member taps 确认收款 in WeChat with what the payout page handed over."""
    transfer = transfer_of(withdrawal)
    params = {"mchId": wechat.mchid, "appId": wechat.appid, "package": transfer.package_info}
    return wechat.payee_confirms(params, openid=openid)


def test_a_transfer_waits_for_the_member_then_is_paid(wechat, client):
    # given an approved withdrawal of all the commission of a member whose WeChat is bound
    member = wechat_member(balance="30.00")
    withdrawal = approved(member, "30.00")

    # when the batch sends it
    outcome = send_batch()

    # then WeChat Pay holds a bill for the member to confirm, and the withdrawal waits
    assert outcome == {"paid": 0, "failed": 0, "pending": 1}
    transfer = transfer_of(withdrawal)
    bill = wechat.transfer_bill(withdrawal.idempotency_key)
    assert (transfer.state, transfer.number, transfer.rail_reference) == (
        "WAIT_USER_CONFIRM",
        withdrawal.idempotency_key,
        bill.transfer_bill_no,
    )
    assert transfer.package_info == bill.package_info
    assert (bill.openid, bill.amount, bill.user_name, bill.scene_id) == (OPENID, 3000, "王芳", "1005")
    assert timedelta(hours=23) < transfer.confirm_by - timezone.now() <= timedelta(hours=24)
    assert fresh(withdrawal).status == Status.PROCESSING
    assert member_balance(member).in_flight == Decimal("30.00")

    # and the member's payout page hands WeChat the bill's package
    client.force_login(member.user)
    page = client.get(reverse("members:payouts")).content.decode()
    assert f'data-package="{transfer.package_info}"' in page
    assert f'data-mch-id="{wechat.mchid}"' in page and "Confirm receipt in WeChat" in page

    # when the member confirms in WeChat and WeChat Pay notifies the shop
    confirm(wechat, withdrawal)
    assert wechat.outbox.release() == [True]

    # then the withdrawal is paid, once, and the commission it covers is labelled paid
    withdrawal = fresh(withdrawal)
    assert (withdrawal.status, withdrawal.provider_reference) == (Status.PAID, bill.transfer_bill_no)
    assert withdrawal.transfer.state == "SUCCESS"
    assert member_balance(member).paid_out == Decimal("30.00")
    assert CommissionEntry.objects.filter(beneficiary=member, status=CommissionEntry.Status.PAID).exists()
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.DONE
    event = WebhookEvent.objects.get(provider="wechat_transfer")
    assert (event.event_type, event.outcome) == ("transfer.success", "withdrawal paid")
    assert event.payload["resource"]["openid"] == "oUpF…"  # never stored in full
    page = client.get(reverse("members:payouts")).content.decode()
    assert "Confirm receipt in WeChat" not in page


def test_the_same_notification_twice_and_a_query_after_it_change_nothing(wechat):
    withdrawal = approved(wechat_member(), "30.00")
    send_batch()
    confirm(wechat, withdrawal)
    [notification] = wechat.outbox.held

    # WeChat Pay sends it twice (each attempt signed afresh, the same id), and the periodic sync asks too
    assert wechat.outbox.release(times=2) == [True, True]
    assert wechat.outbox.send(notification) is True
    assert payout_transfers_sync() == {}  # nothing is open any more

    assert fresh(withdrawal).status == Status.PAID
    assert WithdrawalEvent.objects.filter(withdrawal=withdrawal, to_status=Status.PAID).count() == 1
    assert WebhookEvent.objects.filter(provider="wechat_transfer").count() == 1


def test_a_notification_that_never_comes_is_repaired_by_the_sync(wechat):
    withdrawal = approved(wechat_member(), "30.00")
    send_batch()
    confirm(wechat, withdrawal)
    assert wechat.outbox.drop() == 1  # lost

    assert fresh(withdrawal).status == Status.PROCESSING
    assert payout_transfers_sync() == {"withdrawal paid": 1}

    assert fresh(withdrawal).status == Status.PAID
    assert fresh(withdrawal).transfer.state == "SUCCESS"


def test_a_notification_that_arrives_before_the_transfer_is_recorded_is_applied(wechat, monkeypatch):
    # given a batch that crashed after WeChat Pay made the bill, before the shop recorded it
    withdrawal = approved(wechat_member(), "30.00")
    monkeypatch.setattr("payouts.services._apply_results", crash)
    with pytest.raises(Crash):
        send_batch()
    assert not Transfer.objects.exists()

    # when the member confirms anyway (the page was never shown, but say WeChat did) and WeChat Pay notifies
    bill = wechat.transfer_bill(withdrawal.idempotency_key)
    wechat.payee_confirms({"mchId": wechat.mchid, "appId": wechat.appid, "package": bill.package_info}, openid=OPENID)
    assert wechat.outbox.release() == [True]

    # then the transfer is recorded from the withdrawal's number and the withdrawal paid
    withdrawal = fresh(withdrawal)
    assert withdrawal.status == Status.PAID
    assert withdrawal.transfer.state == "SUCCESS"


def test_an_unconfirmed_transfer_expires_and_the_money_returns(wechat, client):
    member = wechat_member()
    withdrawal = approved(member, "30.00")
    send_batch()

    # 24 hours pass: WeChat Pay closes the bill (FAIL, OVERDUE_CLOSE) and says so
    wechat.transfer_expires(withdrawal.idempotency_key)
    assert wechat.outbox.release() == [True]

    withdrawal = fresh(withdrawal)
    assert withdrawal.status == Status.FAILED
    assert (withdrawal.transfer.state, withdrawal.transfer.fail_reason) == ("FAIL", "OVERDUE_CLOSE")
    assert "did not confirm receipt in WeChat within 24 hours" in withdrawal.reason
    assert member_balance(member).withdrawable == Decimal("80.00")
    client.force_login(member.user)
    page = client.get(reverse("members:payouts")).content.decode()
    assert "did not confirm receipt in WeChat within 24 hours" in page


def test_the_sync_cancels_a_transfer_left_unconfirmed_past_its_time(wechat):
    # given a bill WeChat Pay has not closed yet although its 24 hours are over (its closing can lag)
    member = wechat_member()
    withdrawal = approved(member, "30.00")
    send_batch()
    Transfer.objects.filter(withdrawal=withdrawal).update(confirm_by=timezone.now() - timedelta(hours=1))

    # when the periodic sync runs
    payout_transfers_sync()

    # then it cancelled the bill; WeChat Pay's notification ends it, with the expiry as the reason
    assert wechat.transfer_bill(withdrawal.idempotency_key).state == "CANCELLED"
    assert fresh(withdrawal).transfer.state == "CANCELING"
    assert wechat.outbox.release() == [True]
    withdrawal = fresh(withdrawal)
    assert (withdrawal.status, withdrawal.transfer.state, withdrawal.transfer.fail_reason) == (
        Status.FAILED,
        "CANCELLED",
        "OVERDUE_CLOSE",
    )
    assert "within 24 hours" in withdrawal.reason
    assert member_balance(member).withdrawable == Decimal("80.00")
    # the member can no longer confirm it
    with pytest.raises(WeChatPayError):
        confirm(wechat, withdrawal)


def test_a_transfer_that_fails_returns_the_money_with_the_reason(wechat):
    member = wechat_member()
    withdrawal = approved(member, "30.00")
    send_batch()
    wechat.auto_complete_transfers = False
    confirm(wechat, withdrawal)
    assert wechat.transfer_bill(withdrawal.idempotency_key).state == "TRANSFERING"

    wechat.transfer_fails(withdrawal.idempotency_key, "ACCOUNT_FROZEN")
    wechat.outbox.release()

    withdrawal = fresh(withdrawal)
    assert withdrawal.status == Status.FAILED
    assert withdrawal.reason == "Your WeChat account is frozen. (WeChat Pay: ACCOUNT_FROZEN)"
    assert member_balance(member).withdrawable == Decimal("80.00")


def test_a_real_name_that_is_not_the_payees_fails_the_transfer(wechat):
    member = wechat_member(name="王五")  # WeChat knows the payee as 王芳
    withdrawal = approved(member, "30.00")
    send_batch()
    confirm(wechat, withdrawal)
    wechat.outbox.release()

    withdrawal = fresh(withdrawal)
    assert (withdrawal.status, withdrawal.transfer.fail_reason) == (Status.FAILED, "NAME_NOT_CORRECT")
    assert "not the real name of your WeChat account" in withdrawal.reason


def test_a_transfer_wechat_pay_refuses_to_make_fails_at_once(wechat, settings):
    settings.WECHATPAY_TRANSFER_REPORT_INFOS = "活动名称=推广"  # not the fields scene 1005 requires
    member = wechat_member()
    withdrawal = approved(member, "30.00")

    assert send_batch() == {"paid": 0, "failed": 1, "pending": 0}

    withdrawal = fresh(withdrawal)
    assert withdrawal.status == Status.FAILED
    assert withdrawal.reason.startswith("WeChat Pay refused the transfer (PARAM_ERROR)")
    assert wechat.transfer_bills == {}
    assert member_balance(member).withdrawable == Decimal("80.00")


def test_a_transfer_wechat_pay_did_not_answer_for_waits_and_goes_out_again(wechat, monkeypatch):
    wechat.transfer_rate_limit = 1
    monkeypatch.setattr("payouts.providers.wechat_transfer.RETRY_PAUSE_SECONDS", 0)
    withdrawals = [approved(wechat_member(openid=f"oPayee{n:04}"), "20.00") for n in range(3)]
    outcome = send_batch()
    assert outcome["pending"] == 3 and len(wechat.transfer_bills) < 3  # some refused: FREQUENCY_LIMITED

    wechat.transfer_rate_limit = None
    payout_batches_run()  # the periodic run sends the batch again

    assert sorted(wechat.transfer_bills) == sorted(w.idempotency_key for w in withdrawals)
    assert {fresh(w).transfer.state for w in withdrawals} == {"WAIT_USER_CONFIRM"}


class Crash(Exception):
    pass


def crash(*args, **kwargs):
    raise Crash("the worker died after the rail answered, before anything was recorded")


def test_a_batch_sent_again_after_a_crash_pays_nobody_twice(wechat, monkeypatch):
    # given a batch whose sending crashed after WeChat Pay made every bill
    withdrawals = [approved(wechat_member(), amount) for amount in ("20.00", "30.00", "40.00")]
    with monkeypatch.context() as patch:
        patch.setattr("payouts.services._apply_results", crash)
        with pytest.raises(Crash):
            send_batch()
    assert len(wechat.transfer_bills) == 3
    assert not Transfer.objects.exists()
    assert {fresh(w).status for w in withdrawals} == {Status.PROCESSING}

    # when the periodic run sends the batch again (and once more for good measure)
    payout_batches_run()
    payout_batches_run()

    # then WeChat Pay answered with the same three bills: no new one
    assert sorted(wechat.transfer_bills) == sorted(w.idempotency_key for w in withdrawals)
    for withdrawal in withdrawals:
        assert (
            transfer_of(withdrawal).rail_reference == wechat.transfer_bill(withdrawal.idempotency_key).transfer_bill_no
        )

    # and once each member confirms, each is paid exactly once
    for withdrawal in withdrawals:
        confirm(wechat, withdrawal)
    wechat.outbox.release(times=2)
    payout_transfers_sync()
    paid = [bill for bill in wechat.transfer_bills.values() if bill.state == "SUCCESS"]
    assert sorted(bill.amount for bill in paid) == [2000, 3000, 4000]
    for withdrawal in withdrawals:
        assert fresh(withdrawal).status == Status.PAID
        assert WithdrawalEvent.objects.filter(withdrawal=withdrawal, to_status=Status.PAID).count() == 1


def test_forged_and_foreign_notifications_are_refused_and_change_nothing(wechat, live_server):
    withdrawal = approved(wechat_member(), "30.00")
    send_batch()
    confirm(wechat, withdrawal)
    [genuine] = wechat.outbox.take()
    body, headers = genuine.prepare()

    def post(body, headers):
        status, _answer, _location = http(notify_url(live_server), data=body, headers=headers)
        return status

    # a body changed after signing
    assert post(body.replace(b'"id":"EV-', b'"id":"EV-X'), headers) == 400
    # signed by someone else's key
    impostor = KeyPair.generate()
    real_keys, wechat.platform_keys = wechat.platform_keys, impostor
    forged_body, forged_headers = genuine.prepare()
    wechat.platform_keys = real_keys
    assert post(forged_body, forged_headers) == 400
    # genuine signatures on a resource that does not match the withdrawal: another amount, another payee
    bill = wechat.transfer_bill(withdrawal.idempotency_key)
    for change in ({"transfer_amount": 1}, {"openid": "oSomeoneElse"}, {"out_bill_no": "unknown0001"}):
        resource = {**wechat._transfer_resource(bill, query=False), **change}
        wechat._notify(notify_url(live_server), "MCHTRANSFER.BILL.FINISHED", "mch_payment", "x", "终态", resource)
        [notification] = wechat.outbox.take()
        assert post(*notification.prepare()) == 400
    # a genuine notification of another kind (a payment's) sent to the transfer endpoint
    wechat._notify(notify_url(live_server), "TRANSACTION.SUCCESS", "transaction", "x", "支付成功", {"mchid": "x"})
    [notification] = wechat.outbox.take()
    assert post(*notification.prepare()) == 400

    assert fresh(withdrawal).status == Status.PROCESSING
    assert WebhookEvent.objects.filter(provider="wechat_transfer").count() == 0

    # the genuine one still goes through
    assert post(body, headers) == 200
    assert fresh(withdrawal).status == Status.PAID


def test_notifications_out_of_order_each_apply_once(wechat):
    # two members: one confirms and is paid, the other's bill expires; their notifications arrive newest first
    paid, expired = approved(wechat_member(), "30.00"), approved(wechat_member(openid="oOther0001"), "20.00")
    send_batch()
    confirm(wechat, paid)
    wechat.transfer_expires(expired.idempotency_key)

    assert wechat.outbox.release(reverse=True, times=2) == [True, True, True, True]

    assert (fresh(paid).status, fresh(expired).status) == (Status.PAID, Status.FAILED)
    assert WebhookEvent.objects.filter(provider="wechat_transfer").count() == 2


def test_a_withdrawal_to_a_wechat_account_without_a_bound_payee_waits_for_finance(wechat, settings):
    from payouts.services import payout_account_save
    from tests.factories import MemberFactory
    from tests.payouts.helpers import credit

    member = MemberFactory()
    payout_account_save(member=member, method="wechat", holder_name="王芳", wechat_id="wangfang88")
    credit(member, "50.00")
    withdrawal = approved(member, "30.00")

    assert send_batch() == {"paid": 0, "failed": 0, "pending": 1}
    assert wechat.transfer_bills == {}
    assert not Transfer.objects.exists()
    assert fresh(withdrawal).status == Status.PROCESSING  # finance pays it by hand (manual)


def test_the_member_checks_again_after_confirming(wechat, client):
    member = wechat_member()
    withdrawal = approved(member, "30.00")
    send_batch()
    confirm(wechat, withdrawal)
    wechat.outbox.drop()
    client.force_login(member.user)

    response = client.post(reverse("members:withdrawal_transfer_refresh", args=[withdrawal.pk]), follow=True)

    assert fresh(withdrawal).status == Status.PAID
    assert f"Withdrawal {withdrawal.pk} is paid." in response.content.decode()


def test_another_members_transfer_is_a_404(wechat, client):
    withdrawal = approved(wechat_member(), "30.00")
    send_batch()
    client.force_login(wechat_member(openid="oOther0001").user)

    response = client.post(reverse("members:withdrawal_transfer_refresh", args=[withdrawal.pk]))

    assert response.status_code == 404


def test_logs_never_hold_an_openid_a_name_or_a_key(wechat, caplog, settings, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("payouts.providers.wechat_transfer.RETRY_PAUSE_SECONDS", 0)
    withdrawal = approved(wechat_member(), "30.00")
    wechat.transfer_rate_limit = 1
    wechat._transfer_request_times = [9e12]  # the second's quota is used up: the first send is refused
    send_batch()
    wechat.transfer_rate_limit = None
    payout_batches_run()
    confirm(wechat, withdrawal)
    wechat.outbox.release()

    text = caplog.text + json.dumps([r.getMessage() for r in caplog.records])
    for secret in (OPENID, "王芳", settings.WECHATPAY_APIV3_KEY, settings.WECHATPAY_MERCHANT_PRIVATE_KEY[40:80]):
        assert secret not in text


@pytest.mark.postgres
def test_a_notification_and_a_query_at_the_same_moment_pay_once(wechat, live_server):
    from tests.payouts.test_concurrency import run_together

    # given a confirmed transfer whose notification arrives while the sync asks WeChat Pay about it
    withdrawal = approved(wechat_member(), "30.00")
    send_batch()
    confirm(wechat, withdrawal)
    [notification] = wechat.outbox.take()
    transfer = transfer_of(withdrawal)

    # when both are applied at once, twice each
    calls = [lambda: wechat.outbox.send(notification), lambda: payout_transfers_sync()] * 2
    _results, errors = run_together(calls)

    # then the withdrawal was paid once
    assert errors == []
    assert fresh(withdrawal).status == Status.PAID
    assert WithdrawalEvent.objects.filter(withdrawal=withdrawal, to_status=Status.PAID).count() == 1
    assert Transfer.objects.get(pk=transfer.pk).state == "SUCCESS"


def test_a_person_confirms_a_transfer_on_the_fakes_page_of_waiting_bills(wechat):
    # make run has no WeChat: the fake lists the bills waiting for their payee, each with a button that confirms it
    withdrawal = approved(wechat_member(), "30.00")
    send_batch()
    page_url = wechat.base_url + "/fake/wechatpay/transfers"
    status, page, _location = http(page_url)
    assert status == 200 and withdrawal.idempotency_key in page.decode() and OPENID not in page.decode()

    status, _page, location = http(page_url, data=f"out_bill_no={withdrawal.idempotency_key}".encode())

    assert (status, location) == (302, "/fake/wechatpay/transfers")
    assert wechat.transfer_bill(withdrawal.idempotency_key).state == "SUCCESS"
    wechat.outbox.release()
    assert fresh(withdrawal).status == Status.PAID
