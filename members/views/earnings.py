"""The member's earnings pages (/dashboard/commissions/): their entries, and why each entry is what it is.

A member only ever sees entries they are the beneficiary of (the selectors filter on it): anybody else's entry
is a 404, exactly like one that does not exist.
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from commissions.selectors import (
    commission_entry_before_cap,
    commission_entry_cap_limit,
    commission_entry_history,
    member_commission_entries,
    member_commission_entry,
    member_commission_entry_related,
)
from core.money import format_rate
from members.decorators import member_required
from members.forms import CommissionFilterForm
from payouts.selectors import member_adjustments, member_balance
from referrals.selectors import member_for_user

ENTRIES_PER_PAGE = 20
ADJUSTMENTS_LISTED = 50  # staff adjustments are rare; the statement has all of them


@member_required(suspended_may_read=True)  # earnings stay visible to a suspended member
@require_GET
def commission_entries(request):
    member = request.member
    form = CommissionFilterForm(request.GET)
    entries = member_commission_entries(member, **form.filters())
    page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "members/commission_entries.html",
        {
            "balance": member_balance(member),
            "form": form,
            "page": page,
            "adjustments": list(member_adjustments(member)[:ADJUSTMENTS_LISTED]),
        },
    )


@login_required
@require_GET
def commission_entry_detail(request, entry_id: int):
    member = member_for_user(request.user)
    entry = member_commission_entry(member, entry_id) if member is not None else None
    if entry is None:
        raise Http404(_("No such commission entry."))
    cap_limit = commission_entry_cap_limit(entry)
    return render(
        request,
        "members/commission_entry_detail.html",
        {
            "entry": entry,
            "line": entry.order_line,  # None for a sale on an external network
            "external": entry.external_line,  # None for our own sales
            "rate_percent": format_rate(entry.rate),
            "commission_rate_percent": format_rate(entry.order_line.commission_rate) if entry.order_line else "",
            "before_cap": commission_entry_before_cap(entry),
            "cap_limit": format_rate(cap_limit) if cap_limit is not None else None,
            "history": commission_entry_history(entry),
            "related": member_commission_entry_related(entry),
        },
    )
