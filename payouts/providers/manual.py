"""The manual provider: nothing is sent; staff export the batch as a CSV for the bank's or Alipay's batch
transfer, then record each line's result (admin actions or an uploaded result file)."""

from payouts.providers import PayoutProvider, PayoutResult


class ManualPayoutProvider(PayoutProvider):
    name = "manual"

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        return PayoutResult(status="pending")
