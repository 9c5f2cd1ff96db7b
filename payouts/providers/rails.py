"""The rails provider: each withdrawal through its member's payout rail.

A withdrawal to a bound WeChat payee goes through wechat_transfer, one to an Alipay account through
alipay_transfer, when that rail is listed in settings.PAYOUT_RAILS; everything else (bank cards, a WeChat account
without a bound payee, a rail not listed) waits for finance as the manual provider's withdrawals do (export for the
bank, then record each result).
"""

from django.conf import settings

from payouts.providers import PayoutProvider, PayoutResult, get_payout_provider
from payouts.providers.alipay_transfer import RAIL as ALIPAY
from payouts.providers.wechat_transfer import RAIL as WECHAT

MANUAL = "manual"


def rail_for(withdrawal) -> str:
    """The provider that pays `withdrawal` (by its payout account at request time)."""
    account = withdrawal.account or {}
    method = account.get("method")
    if method == "wechat" and account.get("wechat_openid") and WECHAT in settings.PAYOUT_RAILS:
        return WECHAT
    if method == "alipay" and ALIPAY in settings.PAYOUT_RAILS:
        return ALIPAY
    return MANUAL


class RailsPayoutProvider(PayoutProvider):
    name = "rails"
    follows_transfers = True

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        return get_payout_provider(rail_for(withdrawal)).send(withdrawal, idempotency_key)

    def send_many(self, withdrawals) -> dict[int, PayoutResult]:
        by_rail: dict[str, list] = {}
        for withdrawal in withdrawals:
            by_rail.setdefault(rail_for(withdrawal), []).append(withdrawal)
        results = {}
        for rail, group in by_rail.items():
            results.update(get_payout_provider(rail).send_many(group))
        return results
