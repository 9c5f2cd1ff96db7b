"""The sandbox payout provider: records each transfer once per idempotency key, and fails by rule.

It is sent the net amount (less the tax withheld) and records it. Rule (for demos and tests): a withdrawal whose
(gross) amount has 13 cents (e.g. 20.13) fails with "account
frozen"; everything else is paid. The provider's own record (`SandboxTransfer`, unique on the key)
proves no key is ever paid twice.
"""

from django.db import IntegrityError, transaction

from payouts.providers import PayoutProvider, PayoutResult

FAILURE = "account frozen (sandbox rule: amounts ending in .13 fail)"


def _outcome(amount) -> str:
    return "failed" if f"{amount:.2f}".endswith(".13") else "paid"


class SandboxPayoutProvider(PayoutProvider):
    name = "sandbox"

    def send_many(self, withdrawals) -> dict:
        from payouts.models import SandboxTransfer

        SandboxTransfer.objects.bulk_create(
            [
                SandboxTransfer(idempotency_key=w.idempotency_key, amount=w.net_amount, outcome=_outcome(w.amount))
                for w in withdrawals
            ],
            ignore_conflicts=True,  # a key seen before keeps its first transfer: nobody is paid twice
        )
        transfers = SandboxTransfer.objects.in_bulk(
            [w.idempotency_key for w in withdrawals], field_name="idempotency_key"
        )
        results = {}
        for w in withdrawals:
            transfer = transfers[w.idempotency_key]
            reason = FAILURE if transfer.outcome == "failed" else ""
            results[w.pk] = PayoutResult(status=transfer.outcome, reference=f"sbx_po_{transfer.pk}", reason=reason)
        return results

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        from payouts.models import SandboxTransfer

        outcome = _outcome(withdrawal.amount)
        try:
            with transaction.atomic():
                transfer = SandboxTransfer.objects.create(
                    idempotency_key=idempotency_key, amount=withdrawal.net_amount, outcome=outcome
                )
        except IntegrityError:
            transfer = SandboxTransfer.objects.get(idempotency_key=idempotency_key)
        reason = FAILURE if transfer.outcome == "failed" else ""
        return PayoutResult(status=transfer.outcome, reference=f"sbx_po_{transfer.pk}", reason=reason)
