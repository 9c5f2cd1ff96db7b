"""Business payees' invoices under concurrency, on PostgreSQL: submissions at the same moment store one invoice, and
an accepted invoice rejected while a batch is made leaves either the batch with an accepted invoice or the invoice
rejected with the withdrawal out of the batch, never a rejected invoice's withdrawal sent."""

import pytest

from payouts.invoices import invoice_accept, invoice_reject
from payouts.models import Invoice, PayoutBatch, Withdrawal
from payouts.services import PayoutError, payout_batch_create, withdrawal_approve
from tests.payouts.business import (
    business_member,
    business_withdrawal,
    private_media,  # noqa: F401 - the fixture
    submit,
)
from tests.payouts.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("private_media")]


def test_four_submissions_at_once_store_one_invoice():
    withdrawal = business_withdrawal(business_member())
    results, errors = run_together([lambda: submit(withdrawal) for _ in range(4)])
    assert len(results) == 1 and Invoice.objects.count() == 1
    assert len(errors) == 3 and all(isinstance(error, PayoutError) for error in errors)


@pytest.mark.parametrize("run", range(3))
def test_a_rejection_racing_a_batch_never_sends_a_withdrawal_without_an_accepted_invoice(run):
    withdrawal = business_withdrawal(business_member())
    invoice = submit(withdrawal)
    invoice_accept(invoice=invoice, actor=None)
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    _results, errors = run_together(
        [
            lambda: invoice_reject(invoice=invoice, actor=None, reason="voided"),
            lambda: payout_batch_create(provider_name="manual"),
        ]
    )
    assert all(isinstance(error, PayoutError) for error in errors)
    withdrawal.refresh_from_db()
    invoice.refresh_from_db()
    if withdrawal.status == Withdrawal.Status.PROCESSING:
        assert invoice.status == "accepted" and len(errors) == 1  # the rejection came second: refused
    else:
        assert (withdrawal.status, invoice.status) == ("approved", "rejected") and not PayoutBatch.objects.exists()
