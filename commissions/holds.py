"""Which ledger entries an open risk flag holds (issue #25): one filter, read by the release (which leaves them
pending) and by the member's pages (which say "Under review"). The flags themselves: commissions.services.risk."""

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from commissions.models import CommissionEntry, RiskFlag


def held_entries() -> Q:
    """The entries an open flag holds (for `CommissionEntry.objects.filter(...)`): those of a flagged order, and
    every entry of a flagged member."""
    open_flags = RiskFlag.objects.filter(status=RiskFlag.Status.OPEN)
    return Q(Exists(open_flags.filter(subject=RiskFlag.Subject.ORDER, order_id=OuterRef("order_id")))) | Q(
        Exists(open_flags.filter(subject=RiskFlag.Subject.MEMBER, member_id=OuterRef("beneficiary_id")))
    )


def under_review() -> ExpressionWrapper:
    """An annotation: the entry is pending and held for risk review."""
    return ExpressionWrapper(Q(status=CommissionEntry.Status.PENDING) & held_entries(), output_field=BooleanField())
