"""The leaderboard (/dashboard/team/leaderboard/): who sold and who earned most this or last week or month, and my
own rank; and my choice whether it shows my name and shop (otherwise I am anonymised, as is everyone who did not
choose to be named)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from commissions.selectors import (
    LEADERBOARD_METRIC_CHOICES,
    LEADERBOARD_METRICS,
    LEADERBOARD_PERIOD_CHOICES,
    LEADERBOARD_PERIODS,
    LEADERBOARD_SALES,
)
from members.decorators import member_required
from members.forms import LeaderboardNameForm
from members.selectors import LEADERBOARD_SIZE, member_leaderboard
from referrals.services import member_leaderboard_name_set


@member_required
def leaderboard(request):
    """Top LEADERBOARD_SIZE by sales (as sharer) or earnings (ledger), for this or last week or month, in the site's
    time zone; my own rank below. An unknown period or board is a 404, as an unknown team level is."""
    period = request.GET.get("period", "week")
    metric = request.GET.get("by", LEADERBOARD_SALES)
    if period not in LEADERBOARD_PERIODS or metric not in LEADERBOARD_METRICS:
        raise Http404(_("There is no such leaderboard."))
    board = member_leaderboard(request.member, metric=metric, period=period, today=timezone.localdate())
    return render(
        request,
        "members/leaderboard.html",
        {
            "member": request.member,
            "board": board,
            "size": LEADERBOARD_SIZE,
            "periods": LEADERBOARD_PERIOD_CHOICES,
            "metrics": LEADERBOARD_METRIC_CHOICES,
            "name_form": LeaderboardNameForm(
                initial={"is_named": request.member.is_named_on_leaderboard, "period": period, "by": metric}
            ),
        },
    )


@require_POST
@member_required
def leaderboard_name(request):
    """Show or hide my name and shop on the leaderboards; back to the board I came from."""
    form = LeaderboardNameForm(request.POST)
    if form.is_valid():  # an unticked box is a valid False: only a forged value could fail, and it changes nothing
        member_leaderboard_name_set(member=request.member, is_named=form.cleaned_data["is_named"])
        if form.cleaned_data["is_named"]:
            messages.success(request, _("The leaderboards now show your name and shop."))
        else:
            messages.success(request, _("The leaderboards now show you anonymised."))
    back = {key: form.data.get(key, "") for key in ("period", "by")}
    if back["period"] not in LEADERBOARD_PERIODS or back["by"] not in LEADERBOARD_METRICS:
        back = {}
    return redirect(reverse("members:leaderboard") + (f"?{urlencode(back)}" if back else ""))
