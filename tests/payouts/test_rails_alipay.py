"""Alipay single transfers as a payout rail (payouts/providers/alipay_transfer.py) against the local fake, in the
certificate mode Alipay requires for them: paid at once, refused for a real name that is not the account's (the
money returns, with the reason), DEALING then settled by the sync, sent again after a crash without paying twice."""

import logging
from decimal import Decimal

import pytest
from alipay import AliPay
from alipay.exceptions import AliPayException
from django.urls import reverse

from payouts.models import Transfer, Withdrawal, WithdrawalEvent
from payouts.selectors import member_balance
from payouts.services import payout_batches_run, payout_transfers_sync
from tests.payouts.helpers import ALIPAY_LOGIN, alipay_member, approved, fresh, send_batch, transfer_of

Status = Withdrawal.Status
pytestmark = pytest.mark.usefixtures("rails")


def test_an_alipay_transfer_is_paid_at_once(alipay):
    member = alipay_member(balance="30.00")
    withdrawal = approved(member, "30.00")

    assert send_batch() == {"paid": 1, "failed": 0, "pending": 0}

    transfer = alipay.fund_transfers[withdrawal.idempotency_key]
    assert (transfer.identity_type, transfer.identity, transfer.name, transfer.amount) == (
        "ALIPAY_LOGON_ID",
        ALIPAY_LOGIN,
        "王芳",
        Decimal("30.00"),
    )
    withdrawal = fresh(withdrawal)
    assert (withdrawal.status, withdrawal.provider_reference) == (Status.PAID, transfer.order_id)
    assert (withdrawal.transfer.state, withdrawal.transfer.rail) == ("SUCCESS", "alipay_transfer")
    assert member_balance(member).paid_out == Decimal("30.00")


def test_a_wrong_real_name_fails_the_transfer_and_returns_the_money(alipay, client, admin_client):
    # given a member whose payout account names someone else than the Alipay account's verified name
    member = alipay_member(name="王五")
    withdrawal = approved(member, "30.00")

    # when the batch sends it
    assert send_batch() == {"paid": 0, "failed": 1, "pending": 0}

    # then Alipay refused it (no money moved) and the withdrawal failed, with the money back and the reason said
    assert alipay.fund_transfers == {}
    assert ("alipay.fund.trans.uni.transfer", "PAYEE_USER_INFO_ERROR") in alipay.refused
    withdrawal = fresh(withdrawal)
    assert withdrawal.status == Status.FAILED
    assert withdrawal.reason == (
        "The name on your payout account is not the real name of the Alipay account; correct it and withdraw "
        "again. (Alipay: PAYEE_USER_INFO_ERROR)"
    )
    assert (withdrawal.transfer.state, withdrawal.transfer.fail_reason) == ("FAIL", "PAYEE_USER_INFO_ERROR")
    assert member_balance(member).withdrawable == Decimal("80.00")
    # the member sees why on the payout page, finance on the withdrawal's admin page
    client.force_login(member.user)
    assert "not the real name of the Alipay account" in client.get(reverse("members:payouts")).content.decode()
    page = admin_client.get(reverse("admin:payouts_withdrawal_change", args=[withdrawal.pk])).content.decode()
    assert "PAYEE_USER_INFO_ERROR" in page


def test_an_unknown_alipay_login_fails_the_transfer(alipay):
    member = alipay_member(login="nobody@example.com")
    withdrawal = approved(member, "30.00")

    send_batch()

    assert fresh(withdrawal).reason.endswith("(Alipay: PAYEE_NOT_EXIST)")
    assert member_balance(member).withdrawable == Decimal("80.00")


def test_a_dealing_transfer_is_settled_by_the_sync(alipay):
    alipay.transfers_dealing = True
    paid, failed = approved(alipay_member(), "30.00"), approved(alipay_member(), "20.00")

    assert send_batch() == {"paid": 0, "failed": 0, "pending": 2}
    assert {fresh(paid).transfer.state, fresh(failed).transfer.state} == {"DEALING"}
    assert payout_transfers_sync() == {"transfer DEALING": 2}  # asked: still dealing, nothing changes

    alipay.complete_fund_transfer(paid.idempotency_key)
    alipay.complete_fund_transfer(failed.idempotency_key, "FAIL", "PAYEE_ACCOUNT_STATUS_ERROR")
    assert payout_transfers_sync() == {"withdrawal paid": 1, "withdrawal failed": 1}

    assert fresh(paid).status == Status.PAID
    assert (fresh(failed).status, fresh(failed).transfer.fail_reason) == (Status.FAILED, "PAYEE_ACCOUNT_STATUS_ERROR")


def test_an_alipay_transfer_sent_again_after_a_crash_is_paid_once(alipay, monkeypatch):
    withdrawals = [approved(alipay_member(), amount) for amount in ("20.00", "30.00")]

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died after Alipay answered")

    with monkeypatch.context() as patch:
        patch.setattr("payouts.services._apply_results", crash)
        with pytest.raises(RuntimeError):
            send_batch()
    made = {number: transfer.order_id for number, transfer in alipay.fund_transfers.items()}
    assert len(made) == 2 and not Transfer.objects.exists()

    payout_batches_run()
    payout_batches_run()

    assert {number: transfer.order_id for number, transfer in alipay.fund_transfers.items()} == made
    for withdrawal in withdrawals:
        assert fresh(withdrawal).status == Status.PAID
        assert transfer_of(withdrawal).rail_reference == made[withdrawal.idempotency_key]
        assert WithdrawalEvent.objects.filter(withdrawal=withdrawal, to_status=Status.PAID).count() == 1


def test_a_transfer_alipay_could_not_answer_waits_and_goes_out_again(alipay):
    alipay.balance = Decimal("10.00")  # PAYER_BALANCE_NOT_ENOUGH: Alipay made nothing; finance tops up
    withdrawal = approved(alipay_member(), "30.00")

    assert send_batch() == {"paid": 0, "failed": 0, "pending": 1}
    assert fresh(withdrawal).status == Status.PROCESSING

    alipay.balance = Decimal("1000.00")
    payout_batches_run()

    assert fresh(withdrawal).status == Status.PAID
    assert alipay.balance == Decimal("970.00")


def test_alipay_takes_fund_transfers_only_in_the_certificate_mode(alipay, settings):
    plain = AliPay(
        appid=settings.ALIPAY_APP_ID,
        app_private_key_string=settings.ALIPAY_APP_PRIVATE_KEY,
        alipay_public_key_string=settings.ALIPAY_PUBLIC_KEY,
    )
    plain._gateway = settings.ALIPAY_GATEWAY_URL

    with pytest.raises(AliPayException, match=r"isv\.invalid-app-cert-sn"):
        plain.server_api("alipay.fund.trans.common.query", {"out_biz_no": "x1"})


def test_logs_never_hold_an_account_a_name_or_a_key(alipay, caplog, settings):
    caplog.set_level(logging.DEBUG)
    approved(alipay_member(), "30.00")
    approved(alipay_member(name="王五"), "20.00")

    send_batch()

    for secret in (ALIPAY_LOGIN, "王芳", "王五", settings.ALIPAY_TRANSFER_APP_PRIVATE_KEY[40:80]):
        assert secret not in caplog.text
