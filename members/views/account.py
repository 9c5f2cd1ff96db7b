"""The member's rights and exit (issue #24, docs/privacy.md): download their data, close their shop, close their
account. Each page is the signed-in member's own: there is no member id in any URL."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views import login_again, login_is_recent
from core.forms import add_service_errors
from core.ratelimit import rate_limit_exceeded, rate_limited_response
from members.decorators import member_required
from members.export import member_export_write
from members.forms import AccountCloseForm, ShopCloseForm
from members.selectors import member_closure_review
from members.services import ClosureRefused, member_close, retention_end
from referrals.selectors import member_for_user
from shops.selectors import owner_shop
from shops.services import ShopError, shop_close_announce


@member_required(suspended_may_read=True)
@require_http_methods(["GET"])
def account(request):
    """Your data and your account: download, close the shop, close the account."""
    shop = owner_shop(request.member)
    context = {
        "shop": shop,
        "retention_years": settings.RECORDS_RETENTION_YEARS,
    }
    return render(request, "members/account.html", context)


@login_required
@require_POST
def data_export(request):
    """The member's data as a ZIP, built while they wait (bounded memory: members/export.py), at most
    RATE_LIMIT_DATA_EXPORT a member. A suspended member may download theirs too (the right to a copy stays)."""
    member = member_for_user(request.user)
    if member is None:
        return redirect("members:join")
    retry_after = rate_limit_exceeded("data-export", str(member.pk), settings.RATE_LIMIT_DATA_EXPORT)
    if retry_after:
        return rate_limited_response(request, retry_after)
    now = timezone.now()
    name = f"my-data-{member.invite_code}-{timezone.localtime(now):%Y%m%d-%H%M}.zip"
    response = FileResponse(member_export_write(member, now), as_attachment=True, filename=name)
    response["Content-Type"] = "application/zip"
    response["Cache-Control"] = "no-store"
    return response


@member_required
@require_http_methods(["GET", "POST"])
def shop_close(request):
    """Close only the shop: the closing notice goes up for SHOP_CLOSING_NOTICE_DAYS, buying goes on until then."""
    shop = owner_shop(request.member)
    if shop is None:
        messages.info(request, _("You have no shop to close."))
        return redirect("members:account")
    closes_on = timezone.now() + timedelta(days=settings.SHOP_CLOSING_NOTICE_DAYS)
    form = ShopCloseForm(request.POST if request.method == "POST" else None) if shop.closes_at is None else None
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            shop_close_announce(shop=shop, actor=request.user, reason=_("The owner closed the shop."))
        except ShopError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Your shop's closing notice is up."))
            return redirect("members:shop_close")
    context = {"shop": shop, "form": form, "closes_on": closes_on, "notice_days": settings.SHOP_CLOSING_NOTICE_DAYS}
    return render(request, "members/shop_close.html", context, status=400 if form is not None and form.errors else 200)


@member_required(suspended_may_read=True)
@require_http_methods(["GET", "POST"])
def account_close(request):
    """What stands in the way of closing the account and what closing does; then the typed confirmation."""
    if not login_is_recent(request):
        return login_again(
            request, reverse("members:account_close"), _("For your safety, log in again to close your account.")
        )
    member = request.member
    review = member_closure_review(member)
    available = review.balance.withdrawable if any(b.can_give_up for b in review.blockers) else None
    form = AccountCloseForm(request.POST if request.method == "POST" else None, give_up_amount=available)
    if request.method == "POST" and form.is_valid():
        try:
            closure = member_close(
                member=member,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                give_up_balance=bool(form.cleaned_data.get("give_up_balance")),
            )
        except ClosureRefused as refused:
            for blocker in refused.blockers:
                form.add_error(None, blocker.message)
        else:
            logout(request)
            return render(request, "members/account_closed.html", {"closure": closure})
    blocking = review.blocking(give_up_balance=False)
    context = {
        "review": review,
        "blockers": blocking,
        "hard_blockers": [b for b in blocking if not b.can_give_up],
        "form": form,
        "shop": owner_shop(member),
        "notice_days": settings.SHOP_CLOSING_NOTICE_DAYS,
        "retention_years": settings.RECORDS_RETENTION_YEARS,
        "kept_until": retention_end(timezone.now()),
    }
    return render(request, "members/account_close.html", context, status=400 if form.errors else 200)
