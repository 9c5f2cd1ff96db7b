"""Writes of the member's side that span several apps: closing an account (issue #24, docs/privacy.md).

Each step calls the owning app's service, downwards; the locks are taken through the apps' `locks.py` helpers in
the order of core/locks.py: the member's row (referrals), the shop (shops), the member's wallet (payouts, so no
withdrawal is requested meanwhile), the user (accounts), last.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import user_close
from members.notifications.services import member_notifications_forget
from members.selectors import ClosureBlocker, member_closure_review
from members.webhooks.models import Endpoint
from members.webhooks.services import endpoint_delete
from payouts.locks import wallets_lock
from payouts.services import payout_account_remove
from referrals.locks import member_lock
from referrals.models import Member
from referrals.services import member_close as referrals_member_close
from shops.locks import shop_lock
from shops.models import Shop
from shops.services import shop_close_announce, shop_update

CLOSE_CONFIRMATION = "CLOSE"  # typed by the member; the same word in every language (shown to copy)
REASON_MAX_LENGTH = 500


class ClosureRefused(Exception):
    """The account cannot be closed now; `blockers` say why and what to do. Nothing was changed."""

    def __init__(self, blockers: list[ClosureBlocker]):
        super().__init__(" ".join(b.message for b in blockers))
        self.blockers = blockers


@dataclass(frozen=True)
class Closure:
    member: Member
    retain_until: datetime
    shop_closes_at: datetime | None


def retention_end(closed_at: datetime) -> datetime:
    """Until when the records of an account closed at `closed_at` are kept (settings.RECORDS_RETENTION_YEARS whole
    years; a closure on 29 February is kept until 1 March)."""
    years = closed_at.year + settings.RECORDS_RETENTION_YEARS
    try:
        return closed_at.replace(year=years)
    except ValueError:  # 29 February in a year that has none
        return closed_at.replace(year=years, month=3, day=1)


def member_close(*, member: Member, actor, reason: str = "", give_up_balance: bool = False, now=None) -> Closure:
    """Close `member`'s account, in one transaction, or refuse (ClosureRefused, nothing changed).

    Refused while something stands in the way (members.selectors.member_closure_review: suspended, open orders,
    commission on hold, a withdrawal in flight, an available balance the member has not given up), read again under
    the member's and the wallet's locks, so nothing slips in between the page and the closing.

    Then: the shop shows its closing notice and stops selling (shops.services.shop_close_announce, 410 after the
    notice period); the member's node is marked closed and stays in the tree (referrals.services.member_close), so
    the uplines' chains and the ledger stay exact; the payout account, the webhook endpoints, the inbox, the
    notification choices and addresses are deleted; the user is deactivated with every way in removed and the
    personal fields emptied (accounts.services.user_close), the identity kept until the retention period ends. The
    commission ledger, the withdrawals, the tax withheld and the orders are not touched. A TreeEvent (status →
    closed) records who, why and what was removed. Idempotent: closing a closed member returns its closure.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    with transaction.atomic():
        locked = member_lock(member.pk)
        if locked is None:
            raise Member.DoesNotExist
        if locked.status == Member.Status.CLOSED:
            shop = Shop.objects.filter(owner=locked).first()
            return Closure(locked, retention_end(locked.closed_at or now), shop.closes_at if shop else None)
        shop = Shop.objects.filter(owner=locked).only("pk").first()
        if shop is not None:
            shop_lock(shop.pk)
        wallets_lock([locked.pk])
        review = member_closure_review(locked)
        blockers = review.blocking(give_up_balance=give_up_balance)
        if blockers:
            raise ClosureRefused(blockers)
        given_up = review.balance.withdrawable if give_up_balance else None

        shop_closes_at = None
        if shop is not None:
            shop = shop_close_announce(
                shop=shop, actor=actor, reason=_("The owner closed their account."), stop_sales=True, now=now
            )
            shop_closes_at = shop.closes_at
            # The description is the owner's own words (often a phone or WeChat id to reach them): erased now. The
            # name stays on the notice and the 410 page, which the law asks to name the shop that stops.
            shop_update(shop=shop, description="")
        payout_account = payout_account_remove(member=locked)
        endpoints = list(Endpoint.objects.filter(owner=locked).order_by("pk"))
        for endpoint in endpoints:
            endpoint_delete(endpoint=endpoint)
        notifications = member_notifications_forget(member=locked)
        retain_until = retention_end(now)
        removed = user_close(user=locked.user, retain_until=retain_until)
        locked = referrals_member_close(
            member=locked,
            actor=actor,
            reason=reason,
            now=now,
            detail={
                "records_kept_until": retain_until.isoformat(),
                "shop_closes_at": shop_closes_at.isoformat() if shop_closes_at else None,
                "balance_given_up": str(given_up) if given_up is not None else None,
                "payout_account_removed": payout_account,
                "webhook_endpoints_removed": len(endpoints),
                "notifications": notifications,
                "logins": removed,
            },
        )
    return Closure(locked, retain_until, shop_closes_at)
