"""The balance as the member API shows it: one serializer of the one read model (`payouts.selectors.Balance`), used
by `payouts/balance/` and `commissions/summary/` alike, so both answer the same figures under the same names."""

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from core.api import money_field


class BalanceSerializer(serializers.Serializer):
    available = money_field(
        source="withdrawable",
        help_text=gettext_lazy(
            "Available to withdraw: released + adjusted − in_flight − paid_out. Negative after a clawback of money "
            "already paid out; future commission nets it off."
        ),
    )
    pending = money_field(
        help_text=gettext_lazy("On hold: commission not released yet, less the reversals of refunds before release.")
    )
    released = money_field(help_text=gettext_lazy("All commission released so far, clawbacks included."))
    in_flight = money_field(help_text=gettext_lazy("Being withdrawn: withdrawals requested, approved or processing."))
    paid_out = money_field(help_text=gettext_lazy("Withdrawals paid out."))
    clawed_back = money_field(
        help_text=gettext_lazy(
            "Taken back by refunds after release, as a positive amount (already subtracted in released and available)."
        )
    )
    tax_withheld = money_field(
        help_text=gettext_lazy("Income tax withheld from payouts; 0.00 until tax withholding is introduced.")
    )
    adjusted = money_field(
        help_text=gettext_lazy(
            "Staff adjustments of the balance (credits less debits, with a note on the statement); available at once."
        )
    )
