"""Finance staff's payout screens (payouts/admin.py): approve, reject, batches, the bank CSV and its results."""

import csv
import io
import time
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from kombu.exceptions import OperationalError

from commissions.models import CommissionEntry
from config.celery import app
from payouts.models import PayoutAccount, PayoutBatch, SandboxTransfer, Withdrawal, WithdrawalEvent
from payouts.selectors import member_balance
from payouts.services import payout_batch_create, payout_batches_run, withdrawal_approve, withdrawal_request
from payouts.tasks import payout_batch_send_task
from tests.config.test_celery_broker import celery_worker  # noqa: F401 - the fixture
from tests.factories import MemberFactory, UserFactory
from tests.payouts.helpers import CARD, CARD_MASKED, bank_account, credit, snapshot

pytestmark = pytest.mark.django_db

D = Decimal
Status = Withdrawal.Status
WITHDRAWALS = reverse("admin:payouts_withdrawal_changelist")
BATCHES = reverse("admin:payouts_payoutbatch_changelist")
ACCOUNTS = reverse("admin:payouts_payoutaccount_changelist")
CREATE_BATCH = reverse("admin:payouts_withdrawal_create_batch")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _staff(*, finance: bool):
    user = UserFactory(is_staff=True)
    permissions = Permission.objects.filter(content_type__app_label="payouts")
    if not finance:
        permissions = permissions.exclude(codename="view_unmasked_payoutaccount")
    user.user_permissions.set(permissions)
    return user


@pytest.fixture
def funded():
    """A member with 500.00 available and a bank account on file."""
    member = MemberFactory()
    credit(member, "500.00")
    bank_account(member)
    return member


def _request(member, *amounts: str) -> list[Withdrawal]:
    return [withdrawal_request(member=member, amount=D(amount)) for amount in amounts]


def _approved(member, *amounts: str) -> list[Withdrawal]:
    withdrawals = _request(member, *amounts)
    for withdrawal in withdrawals:
        withdrawal_approve(withdrawal=withdrawal, actor=None)
    return withdrawals


def _act(client, url: str, action: str, objects, follow=True, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **extra}
    return client.post(url, data, follow=follow)


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def _statuses(withdrawals) -> list[str]:
    return [Withdrawal.objects.get(pk=withdrawal.pk).status for withdrawal in withdrawals]


# --- lists and pages ---------------------------------------------------------------------------------------


def test_withdrawal_changelist_in_bounded_queries(admin_client, django_assert_max_num_queries):
    # given: 30 withdrawals of 10 members, some of them batched
    for _ in range(10):
        member = MemberFactory()
        credit(member, "100.00")
        bank_account(member)
        _approved(member, "10.00")
        _request(member, "11.00", "12.00")
    payout_batch_create(provider_name="manual")

    # session, user, count, page of rows (members, users and batches joined), provider filter choices
    with django_assert_max_num_queries(7):
        response = admin_client.get(WITHDRAWALS)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 30
    page = response.content.decode()
    assert "¥12.00" in page and "Create payout batch now" in page


def test_batch_changelist_in_bounded_queries(admin_client, django_assert_max_num_queries):
    for _ in range(5):
        member = MemberFactory()
        credit(member, "10.00")
        bank_account(member)
        _approved(member, "10.00")
        payout_batch_create(provider_name="manual")

    with django_assert_max_num_queries(6):
        response = admin_client.get(BATCHES)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 5
    assert "¥10.00" in response.content.decode()


def test_pages_load_read_only(admin_client, funded):
    withdrawal = _approved(funded, "40.00")[0]
    batch = payout_batch_create(provider_name="manual")
    event = WithdrawalEvent.objects.first()

    pages = {
        "withdrawal": admin_client.get(reverse("admin:payouts_withdrawal_change", args=[withdrawal.pk])),
        "batch": admin_client.get(reverse("admin:payouts_payoutbatch_change", args=[batch.pk])),
        "account": admin_client.get(reverse("admin:payouts_payoutaccount_change", args=[funded.payout_account.pk])),
        "event": admin_client.get(reverse("admin:payouts_withdrawalevent_change", args=[event.pk])),
        "accounts": admin_client.get(ACCOUNTS),
        "batches": admin_client.get(BATCHES),
        "events": admin_client.get(reverse("admin:payouts_withdrawalevent_changelist")),
        "search": admin_client.get(WITHDRAWALS, {"q": "not-a-number"}),
        "create batch": admin_client.get(CREATE_BATCH),
    }

    assert {name: response.status_code for name, response in pages.items()} == dict.fromkeys(pages, 200)
    withdrawal_page = pages["withdrawal"].content.decode()
    assert 'name="_save"' not in withdrawal_page and 'name="amount"' not in withdrawal_page
    assert "approved" in withdrawal_page and "processing" in withdrawal_page  # the events inline
    assert "¥40.00" in pages["batch"].content.decode()
    assert admin_client.get(reverse("admin:payouts_withdrawal_add")).status_code == 403
    assert admin_client.get(reverse("admin:payouts_withdrawal_delete", args=[withdrawal.pk])).status_code == 403


def test_a_post_to_the_withdrawal_page_changes_nothing(admin_client, funded):
    withdrawal = _request(funded, "40.00")[0]
    before = snapshot()

    response = admin_client.post(
        reverse("admin:payouts_withdrawal_change", args=[withdrawal.pk]), {"status": "paid", "amount": "1.00"}
    )

    assert response.status_code == 403
    assert snapshot() == before


# --- masking -----------------------------------------------------------------------------------------------


def test_account_numbers_are_masked_for_staff_outside_finance(client, funded):
    withdrawal = _request(funded, "40.00")[0]
    client.force_login(_staff(finance=False))

    pages = [
        client.get(ACCOUNTS),
        client.get(reverse("admin:payouts_payoutaccount_change", args=[funded.payout_account.pk])),
        client.get(reverse("admin:payouts_withdrawal_change", args=[withdrawal.pk])),
        client.get(WITHDRAWALS),
    ]

    for response in pages:
        assert response.status_code == 200
        page = response.content.decode()
        assert CARD not in page
    assert all(CARD_MASKED in response.content.decode() for response in pages[:3])
    assert client.get(ACCOUNTS, {"q": CARD}).context["cl"].result_count == 0  # no search oracle either


@pytest.mark.parametrize("who", ["superuser", "finance"])
def test_finance_staff_see_full_numbers(client, funded, staff_user, who):
    withdrawal = _request(funded, "40.00")[0]
    client.force_login(staff_user if who == "superuser" else _staff(finance=True))

    account_page = client.get(reverse("admin:payouts_payoutaccount_change", args=[funded.payout_account.pk]))
    withdrawal_page = client.get(reverse("admin:payouts_withdrawal_change", args=[withdrawal.pk]))

    assert CARD in account_page.content.decode()
    assert CARD in withdrawal_page.content.decode()
    assert CARD not in client.get(ACCOUNTS).content.decode()  # the list is masked for everyone


# --- approve and reject ------------------------------------------------------------------------------------


def test_approve_reports_rows_that_cannot_be_approved(admin_client, funded, staff_user):
    first, second, cancelled = _request(funded, "10.00", "20.00", "30.00")
    cancelled.status = Status.CANCELLED  # as withdrawal_cancel leaves it
    Withdrawal.objects.filter(pk=cancelled.pk).update(status=Status.CANCELLED)

    response = _act(admin_client, WITHDRAWALS, "approve_withdrawals", [first, second, cancelled], index="0")

    assert _statuses([first, second, cancelled]) == ["approved", "approved", "cancelled"]
    assert _messages(response) == [
        (
            "error",
            f"withdrawal {cancelled.pk}: 30.00 (cancelled): A withdrawal that is “Cancelled” cannot become “Approved”.",
        ),
        ("success", "Approved 2 withdrawals."),
    ]
    assert WithdrawalEvent.objects.filter(to_status="approved", actor=staff_user, actor_label="staff").count() == 2


def test_reject_asks_for_a_reason_and_refuses_without_one(admin_client, funded):
    withdrawals = _request(funded, "10.00", "20.00")
    before = snapshot()

    asked = _act(admin_client, WITHDRAWALS, "reject_withdrawals", withdrawals, index="0")
    refused = _act(admin_client, WITHDRAWALS, "reject_withdrawals", withdrawals, apply="Reject", reason="  ")

    assert (asked.status_code, refused.status_code) == (200, 400)  # the form, then the form with its error
    assert asked.templates[0].name == refused.templates[0].name == "admin/action_form.html"
    assert refused.context["form"].errors == {"reason": ["This field is required."]}
    assert f"{withdrawals[0].pk}: {funded}" in asked.content.decode()
    assert snapshot() == before


def test_reject_with_a_reason_returns_the_money_and_shows_the_reason(admin_client, client, funded):
    withdrawals = _request(funded, "10.00", "20.00")

    response = _act(admin_client, WITHDRAWALS, "reject_withdrawals", withdrawals, apply="Reject", reason="Wrong name")

    assert _messages(response) == [("success", "Rejected 2 withdrawals.")]
    assert set(Withdrawal.objects.values_list("status", "reason")) == {("rejected", "Wrong name")}
    assert member_balance(funded).withdrawable == D("500.00")
    client.force_login(funded.user)
    assert "Wrong name" in client.get(reverse("members:payouts")).content.decode()


def test_staff_without_change_permission_get_no_actions(client, funded):
    withdrawal = _request(funded, "10.00")[0]
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_withdrawal"))
    client.force_login(viewer)

    response = _act(client, WITHDRAWALS, "approve_withdrawals", [withdrawal], index="0")

    assert response.status_code == 200
    assert _statuses([withdrawal]) == ["requested"]
    assert client.get(CREATE_BATCH).status_code == 403
    assert client.post(CREATE_BATCH, {"provider": "sandbox"}).status_code == 403


# --- batches -----------------------------------------------------------------------------------------------


def test_create_batch_with_the_sandbox_pays_and_fails_by_rule(
    admin_client, funded, staff_user, django_capture_on_commit_callbacks
):
    paid, failed = _approved(funded, "40.00", "20.13")
    waiting = _request(funded, "15.00")[0]

    page = admin_client.get(CREATE_BATCH)
    with django_capture_on_commit_callbacks(execute=True):  # the send task runs on commit, eagerly here
        response = admin_client.post(CREATE_BATCH, {"provider": "sandbox"}, follow=True)

    assert "2 approved withdrawals (¥60.13) are waiting" in page.content.decode()
    batch = PayoutBatch.objects.get()
    assert response.redirect_chain == [(reverse("admin:payouts_payoutbatch_change", args=[batch.pk]), 302)]
    assert _messages(response) == [("success", f"Created {batch} and queued it for sending to the payout provider.")]
    assert (batch.provider, batch.status, batch.created_by) == ("sandbox", "done", staff_user)
    assert _statuses([paid, failed, waiting]) == ["paid", "failed", "requested"]
    assert SandboxTransfer.objects.count() == 2
    assert member_balance(funded).withdrawable == D("500.00") - D("40.00") - D("15.00")


def test_create_batch_queues_the_send_and_calls_no_provider_in_the_request(
    admin_client, funded, django_capture_on_commit_callbacks
):
    paid, failed = _approved(funded, "40.00", "20.13")

    with django_capture_on_commit_callbacks() as after_commit:
        admin_client.post(CREATE_BATCH, {"provider": "sandbox"})

    # then: the request made the batch and asked for its sending, nothing more
    batch = PayoutBatch.objects.get()
    assert batch.status == "processing"
    assert _statuses([paid, failed]) == ["processing", "processing"]
    assert not SandboxTransfer.objects.exists()
    assert len(after_commit) == 2  # the withdrawals' announcement, then the batch's sending

    # when: the transaction has committed, the queued task runs (eagerly here, on a worker with a broker)
    after_commit[-1]()

    batch.refresh_from_db()
    assert batch.status == "done"
    assert _statuses([paid, failed]) == ["paid", "failed"]
    assert SandboxTransfer.objects.count() == 2


def test_create_batch_with_the_broker_down_keeps_the_batch_for_the_periodic_run(
    admin_client, funded, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    withdrawals = _approved(funded, "40.00", "25.00")

    def unreachable(*_args, **_kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(payout_batch_send_task, "delay", unreachable)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CREATE_BATCH, {"provider": "sandbox"})

    batch = PayoutBatch.objects.get()
    assert response.status_code == 302
    assert batch.status == "processing"
    assert _statuses(withdrawals) == ["processing", "processing"]
    assert not SandboxTransfer.objects.exists()
    assert "the periodic payout run (payouts-run) sends every batch still processing" in caplog.text

    # and: the periodic run sends it
    assert payout_batches_run() == 1
    assert _statuses(withdrawals) == ["paid", "paid"]


def test_create_batch_with_the_manual_provider_only_creates_it(admin_client, funded):
    withdrawals = _approved(funded, "40.00", "25.00")

    response = admin_client.post(CREATE_BATCH, {"provider": "manual"}, follow=True)

    batch = PayoutBatch.objects.get()
    assert (batch.provider, batch.status) == ("manual", "processing")
    assert _statuses(withdrawals) == ["processing", "processing"]
    assert not SandboxTransfer.objects.exists()
    assert "Export it as CSV" in _messages(response)[0][1]


def test_create_batch_with_nothing_approved_or_a_bad_provider(admin_client, funded):
    _request(funded, "40.00")

    nothing = admin_client.post(CREATE_BATCH, {"provider": "sandbox"}, follow=True)
    bad = admin_client.post(CREATE_BATCH, {"provider": "paypal"})

    assert _messages(nothing) == [("warning", "No approved withdrawals to batch.")]
    assert bad.status_code == 200 and "provider" in bad.context["form"].errors
    assert not PayoutBatch.objects.exists()


def test_send_again_pays_nobody_twice(admin_client, funded, django_capture_on_commit_callbacks):
    withdrawals = _approved(funded, "40.00", "20.13", "30.00")
    batch = payout_batch_create(provider_name="sandbox")

    with django_capture_on_commit_callbacks() as after_commit:
        first = _act(admin_client, BATCHES, "send_again", [batch], index="0")
    assert not SandboxTransfer.objects.exists()  # queued, not sent inside the request
    after_commit[0]()
    with django_capture_on_commit_callbacks(execute=True):
        second = _act(admin_client, BATCHES, "send_again", [batch], index="0")

    assert _messages(first) == [("success", f"{batch} is queued for sending to the payout provider.")]
    assert _messages(second) == [("success", f"{batch} is queued for sending to the payout provider.")]
    assert _statuses(withdrawals) == ["paid", "failed", "paid"]
    assert SandboxTransfer.objects.count() == 3
    assert WithdrawalEvent.objects.filter(to_status__in=["paid", "failed"]).count() == 3


# --- the manual provider: CSV for the bank, results back -----------------------------------------------------


@pytest.fixture
def manual_batch(funded):
    alipay_member = MemberFactory(identity="=HYPERLINK(1)")  # the Alipay real name is the legal name
    credit(alipay_member, "80.00")
    PayoutAccount.objects.create(
        member=alipay_member, method="alipay", holder_name="=HYPERLINK(1)", alipay_account="13800001111"
    )
    withdrawals = [*_approved(funded, "40.00", "25.50"), *_approved(alipay_member, "80.00")]
    batch = payout_batch_create(provider_name="manual")
    batch.test_withdrawals = withdrawals
    return batch


def _export(client, *batches):
    response = _act(client, BATCHES, "export_csv", batches, follow=False, index="0")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="payout-batch-')
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_export_csv_for_the_bank(admin_client, manual_batch):
    first, second, third = manual_batch.test_withdrawals

    rows = _export(admin_client, manual_batch)

    bank = ["Bank transfer", "王芳", CARD, "中国工商银行", "上海南京路支行"]
    assert rows == [
        ["序号 Serial", "收款方式 Method", "收款人姓名 Payee name", "收款账号 Account", "开户银行 Bank",
         "开户支行 Branch", "金额 Amount", "提现编号 Withdrawal ID", "备注 Remark"],
        ["1", *bank, "40.00", str(first.pk), f"佣金提现 {first.pk}"],
        ["2", *bank, "25.50", str(second.pk), f"佣金提现 {second.pk}"],
        ["3", "Alipay", "'=HYPERLINK(1)", "13800001111", "", "", "80.00", str(third.pk), f"佣金提现 {third.pk}"],
    ]  # fmt: skip


def test_export_leaves_out_lines_that_already_have_a_result(admin_client, manual_batch):
    first = manual_batch.test_withdrawals[0]
    _act(admin_client, WITHDRAWALS, "mark_paid", [first], apply="Mark paid")

    rows = _export(admin_client, manual_batch)

    assert [row[7] for row in rows[1:]] == [str(w.pk) for w in manual_batch.test_withdrawals[1:]]


def test_export_is_for_finance_staff_only(client, manual_batch):
    client.force_login(_staff(finance=False))

    response = _act(client, BATCHES, "export_csv", [manual_batch], index="0")

    assert response["Content-Type"].startswith("text/html")
    assert "export_csv" not in response.content.decode()
    assert CARD not in response.content.decode()

    client.force_login(_staff(finance=True))
    assert _export(client, manual_batch)[1][3] == CARD


def _upload(client, batch, text: str, *, encoding="utf-8-sig", apply=True):
    extra = {"apply": "Apply results"} if apply else {}
    upload = SimpleUploadedFile("result.csv", text.encode(encoding), content_type="text/csv")
    return _act(client, BATCHES, "upload_results", [batch], file=upload, **extra)


def test_upload_results_applies_good_lines_and_reports_the_rest(admin_client, funded, manual_batch):
    first, second, third = manual_batch.test_withdrawals
    outsider = _request(funded, "10.00")[0]
    asked = _act(admin_client, BATCHES, "upload_results", [manual_batch], index="0")
    text = (
        "withdrawal_id,status,reference,reason\n"
        f"{first.pk},paid,BANK-001,\n"
        f"{second.pk},FAILED,,户名不符\n"
        "abc,paid,,\n"
        "99999999,paid,,\n"
        f"{third.pk},done,,\n"
        f"{outsider.pk},paid,,\n"
        "\n"
    )

    response = _upload(admin_client, manual_batch, text)

    assert asked.status_code == 200 and 'enctype="multipart/form-data"' in asked.content.decode()
    assert _statuses([first, second, third, outsider]) == ["paid", "failed", "processing", "requested"]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.provider_reference, second.reason) == ("BANK-001", "户名不符")
    assert _messages(response) == [
        ("success", "Applied 1 paid and 1 failed."),
        (
            "error",
            "4 lines not applied: line 4: not a withdrawal id; line 5: withdrawal 99999999 is not in the chosen "
            f"batch; line 6: status must be paid or failed; line 7: withdrawal {outsider.pk} is not in the chosen "
            "batch",
        ),
    ]
    manual_batch.refresh_from_db()
    assert manual_batch.status == "processing"  # the third line has no result yet


def test_uploading_again_skips_what_was_applied_and_closes_the_batch(admin_client, manual_batch):
    first, second, third = manual_batch.test_withdrawals
    _upload(admin_client, manual_batch, f"{first.pk},paid,B1,\n{second.pk},paid,B2,\n")
    events = WithdrawalEvent.objects.count()

    response = _upload(
        admin_client, manual_batch, f"{first.pk},failed,,late\n{third.pk},paid,B3,\n", encoding="gb18030"
    )

    assert _statuses([first, second, third]) == ["paid", "paid", "paid"]
    assert WithdrawalEvent.objects.count() == events + 1
    assert _messages(response) == [
        ("success", "Applied 1 paid and 0 failed."),
        ("error", f"1 line not applied: line 1: withdrawal {first.pk} already has a result; skipped"),
    ]
    manual_batch.refresh_from_db()
    assert manual_batch.status == "done" and manual_batch.completed_at is not None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"\x00\xff\xfe\x81\x00" * 10, "Save the file as CSV in UTF-8."),
        (b"withdrawal_id,status\n", "The file has no result lines."),
    ],
)
def test_a_file_that_is_not_a_result_csv_is_a_form_error(admin_client, manual_batch, content, error):
    before = snapshot()
    upload = SimpleUploadedFile("result.csv", content, content_type="text/csv")

    response = _act(admin_client, BATCHES, "upload_results", [manual_batch], file=upload, apply="Apply results")

    assert response.status_code == 400  # the form again, with the error
    assert response.context["form"].errors == {"file": [error]}
    assert snapshot() == before


def test_upload_without_a_file_is_a_form_error(admin_client, manual_batch):
    response = _act(admin_client, BATCHES, "upload_results", [manual_batch], apply="Apply results")

    assert response.context["form"].errors == {"file": ["This field is required."]}


# --- per-withdrawal results --------------------------------------------------------------------------------


def test_mark_paid_labels_the_commission_paid(admin_client, funded, manual_batch):
    first = manual_batch.test_withdrawals[0]

    asked = _act(admin_client, WITHDRAWALS, "mark_paid", [first], index="0")
    response = _act(admin_client, WITHDRAWALS, "mark_paid", [first], apply="Mark paid", reference="BANK-9")

    assert asked.templates[0].name == "admin/action_form.html"
    assert _messages(response) == [("success", "Marked 1 withdrawal paid.")]
    first.refresh_from_db()
    assert (first.status, first.provider_reference) == ("paid", "BANK-9")
    # 40.00 of the single 500.00 entry cannot cover it: the entry stays available until paid in full
    assert list(CommissionEntry.objects.filter(beneficiary=funded).values_list("status", flat=True)) == ["available"]
    assert member_balance(funded).paid_out == D("40.00")


def test_mark_failed_needs_a_reason_and_returns_the_money(admin_client, funded, manual_batch):
    first, second, _third = manual_batch.test_withdrawals
    before = snapshot()

    refused = _act(admin_client, WITHDRAWALS, "mark_failed", [first, second], apply="Mark failed", reason="")
    assert refused.context["form"].errors == {"reason": ["This field is required."]}
    assert snapshot() == before

    response = _act(admin_client, WITHDRAWALS, "mark_failed", [first, second], apply="Mark failed", reason="卡已注销")

    assert _messages(response) == [("success", "Marked 2 withdrawals failed.")]
    assert set(Withdrawal.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", "reason")) == {
        ("failed", "卡已注销")
    }
    assert member_balance(funded).withdrawable == D("500.00")


def test_marking_a_withdrawal_that_is_not_processing_changes_nothing(admin_client, funded):
    requested = _request(funded, "40.00")[0]
    before = snapshot()

    response = _act(admin_client, WITHDRAWALS, "mark_paid", [requested], apply="Mark paid")

    assert _messages(response) == [
        ("error", f"withdrawal {requested.pk}: 40.00 (requested): not being processed (it is “Requested”); unchanged.")
    ]
    assert snapshot() == before


def test_marking_the_last_line_of_a_manual_batch_closes_it(admin_client, manual_batch):
    response = _act(admin_client, WITHDRAWALS, "mark_paid", manual_batch.test_withdrawals, apply="Mark paid")

    assert _messages(response) == [("success", "Marked 3 withdrawals paid.")]
    manual_batch.refresh_from_db()
    assert manual_batch.status == "done"


# --- with a real broker and worker ---------------------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_create_batch_is_sent_by_a_worker_through_the_broker(client, celery_worker):  # noqa: F811 - the fixture
    # given: two approved withdrawals; the admin's messages go to this test's worker queue
    member = MemberFactory()
    credit(member, "500.00")
    bank_account(member)
    paid, failed = _approved(member, "40.00", "20.13")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    saved_queue = app.conf.task_default_queue
    app.conf.task_default_queue = celery_worker.test_queue
    try:
        # when: finance staff create the batch
        response = client.post(CREATE_BATCH, {"provider": "sandbox"}, follow=True)
        batch = PayoutBatch.objects.get()
        assert _messages(response) == [
            ("success", f"Created {batch} and queued it for sending to the payout provider.")
        ]

        # then: the worker sends it
        deadline = time.monotonic() + 60
        while PayoutBatch.objects.get(pk=batch.pk).status != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        app.conf.task_default_queue = saved_queue

    assert PayoutBatch.objects.get(pk=batch.pk).status == "done"
    assert _statuses([paid, failed]) == ["paid", "failed"]
    assert SandboxTransfer.objects.count() == 2
