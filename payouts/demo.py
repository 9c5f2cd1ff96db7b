"""Demo money: the demo orders' commission split and released, a payout account and a withdrawal."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from commissions.services import commission_release_due, commission_split_queued
from payouts.models import PayoutAccount, Withdrawal
from payouts.selectors import member_balance
from payouts.services import payout_account_save, withdrawal_request
from referrals.models import Member


def demo_money(stdout) -> None:
    """Idempotent: splits what is queued, releases completed orders as if the hold had passed, and gives the
    founder an Alipay account and one withdrawal request (once)."""
    while commission_split_queued(limit=500):
        pass
    commission_release_due(now=timezone.now() + timedelta(days=settings.COMMISSION_HOLD_DAYS + 1))
    founder = Member.objects.filter(user__email="founder@example.com").first()
    if founder is None:
        return
    with transaction.atomic():
        if not PayoutAccount.objects.filter(member=founder).exists():
            payout_account_save(
                member=founder, method="alipay", holder_name="Sun Founder", alipay_account="founder@example.com"
            )
        available = member_balance(founder).available
        if not Withdrawal.objects.filter(member=founder).exists() and available >= settings.WITHDRAWAL_MINIMUM:
            amount = min(available, Decimal("50.00"))
            withdrawal_request(member=founder, amount=amount)
            stdout.write(f"  founder asked to withdraw {amount} (approve it in admin → Withdrawals)")
