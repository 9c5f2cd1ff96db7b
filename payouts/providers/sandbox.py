"""The sandbox payout provider: records each transfer once per idempotency key, and fails by rule.

Rule (for demos and tests): a withdrawal whose amount has 13 cents (e.g. 20.13) fails with "account
frozen"; everything else is paid. The provider's own record (`SandboxTransfer`, unique on the key)
proves no key is ever paid twice.
"""

from django.db import IntegrityError, transaction

from payouts.providers import PayoutProvider, PayoutResult


class SandboxPayoutProvider(PayoutProvider):
    name = "sandbox"

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        from payouts.models import SandboxTransfer

        failed = f"{withdrawal.amount:.2f}".endswith(".13")
        outcome = SandboxTransfer.Outcome.FAILED if failed else SandboxTransfer.Outcome.PAID
        try:
            with transaction.atomic():
                transfer = SandboxTransfer.objects.create(
                    idempotency_key=idempotency_key, amount=withdrawal.amount, outcome=outcome
                )
        except IntegrityError:
            transfer = SandboxTransfer.objects.get(idempotency_key=idempotency_key)
        reason = "account frozen (sandbox rule: amounts ending in .13 fail)" if transfer.outcome == "failed" else ""
        return PayoutResult(status=transfer.outcome, reference=f"sbx_po_{transfer.pk}", reason=reason)
