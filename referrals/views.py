import io
from datetime import datetime, time, timedelta

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import SignUpForm
from core.charts import daily_chart_svg
from core.money import ZERO, format_money
from core.ratelimit import rate_limit
from core.site_url import absolute_url
from members.selectors import member_dashboard_stats, member_team_level_sales, team_levels_in_force
from payouts.selectors import member_balance
from referrals.decorators import member_required
from referrals.models import Member
from referrals.selectors import (
    member_by_invite_code,
    member_for_user,
    member_pending_team,
    member_team_level_counts,
    member_team_size,
)
from referrals.services import ReferralError, member_join
from shops.attribution import attribution_from_request
from shops.forms import ShareLinkForm
from shops.models import Shop
from shops.selectors import member_share_link, member_share_links
from shops.services import ShopError, clicks_flush, share_link_create, share_link_deactivate

LOGIN_BACKEND = "accounts.backends.EmailOrPhoneBackend"


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
@rate_limit("join", "RATE_LIMIT_JOIN")
def join(request, invite_code: str | None = None):
    """Sign up (or, signed in, just join) under the sponsor whose invite code is in the URL."""
    sponsor = member_by_invite_code(invite_code) if invite_code else None
    problem = None
    if invite_code and sponsor is None:
        problem = _("We could not find the invite code “%(code)s”. Check the link, or join without a sponsor.") % {
            "code": invite_code
        }
    elif sponsor is not None and not sponsor.is_active:
        problem = _("This invitation is no longer valid. You can still join without a sponsor.")
    source = None
    if not invite_code and settings.REFERRALS_JOIN_VIA_SHARE_LINK:
        # No invite link: a valid share-link cookie makes its sharer the sponsor.
        attribution = attribution_from_request(request)
        if attribution is not None:
            sponsor, source = attribution.sharer, Member.JoinSource.SHARE_LINK
    context = {"sponsor": sponsor if problem is None else None, "problem": problem, "invite_code": invite_code}

    if member_for_user(request.user) is not None:
        messages.info(request, _("You are already a member."))
        return redirect("referrals:dashboard")
    if problem is not None:
        return render(request, "referrals/join.html", context, status=404 if sponsor is None else 200)

    sponsor = context["sponsor"]
    form = None if request.user.is_authenticated else SignUpForm(request.POST or None)
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            with transaction.atomic():
                user = request.user if form is None else form.save()
                member_join(user=user, sponsor=sponsor, source=source)
        except ReferralError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(request.path)
        except IntegrityError:  # the same email signed up a moment ago, between validation and save
            form.add_error("email", _("An account with this email address already exists. Log in instead."))
            return render(request, "referrals/join.html", {**context, "form": form})
        if form is not None:
            login(request, user, backend=LOGIN_BACKEND)
        messages.success(request, _("Welcome! You have joined."))
        return redirect("referrals:dashboard")
    context["form"] = form
    return render(request, "referrals/join.html", context)


@login_required
def dashboard(request):
    """The shop owner's overview: earnings, link and shop performance, a 30-day chart, invite link and shop."""
    member = member_for_user(request.user)
    if member is None:
        messages.info(request, _("Join the programme to get your shop and invite link."))
        return redirect("referrals:join")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The embedded default runs no beat: flush the in-process click counter so the figures are current.
        clicks_flush()
    stats = member_dashboard_stats(member, timezone.localdate())
    invite_url = absolute_url(reverse("referrals:join_with_code", args=[member.invite_code]))
    return render(
        request,
        "referrals/dashboard.html",
        {
            "member": member,
            "shop": Shop.objects.filter(owner=member).first(),
            "invite_url": invite_url,
            "team_size": member_team_size(member),
            # by parent link: django-mptt's get_children() misses invitees not yet placed in the nested sets
            "direct_count": Member.objects.filter(parent=member).count(),
            "stats": stats,
            "balance": member_balance(member),
            "chart": _daily_chart(stats.daily),
        },
    )


def _daily_chart(daily) -> str:
    earnings = sum((day.earnings for day in daily), ZERO)
    orders = sum(day.orders for day in daily)
    svg = daily_chart_svg(
        [(day.day, day.earnings, day.orders) for day in daily],
        title=_("Daily earnings and orders, last %(days)d days") % {"days": len(daily)},
        description=_("%(orders)d orders and %(earnings)s earned in total; the table below lists every day.")
        % {"orders": orders, "earnings": format_money(earnings)},
        earnings_label=_("Earnings"),
        orders_label=_("Orders"),
        format_amount=format_money,
        format_day=lambda day: date_format(day, "MONTH_DAY_FORMAT"),
    )
    return mark_safe(svg)  # noqa: S308 - daily_chart_svg escapes every piece of text it writes


TEAM_PAGE_SIZE = 50


@member_required
def team(request):
    """My sponsor, invite link and team: the levels of my downline the compliance policy pays, one at a time,
    each member with their join date and this month's sales. A fixed number of queries whatever the team size."""
    member = request.member
    levels = team_levels_in_force()
    try:
        level = int(request.GET.get("level", "1"))
    except ValueError:
        level = 0
    if not 1 <= level <= levels:
        raise Http404(_("Your team page shows levels 1 to %(levels)d.") % {"levels": levels})
    today = timezone.localdate()
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    zone = timezone.get_current_timezone()
    since = timezone.make_aware(datetime.combine(month_start, time.min), zone)
    until = timezone.make_aware(datetime.combine(next_month, time.min), zone)
    pending = member_pending_team(member)  # members who joined moments ago, not in the nested sets yet
    level_counts = member_team_level_counts(member, levels, pending)
    paginator = Paginator(member_team_level_sales(member, level, since, until, pending), TEAM_PAGE_SIZE)
    # Counted already, with the other levels: spare the paginator a second scan of a 100,000-member downline.
    paginator.count = level_counts[level]
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "referrals/team.html",
        {
            "member": member,
            "invite_url": absolute_url(reverse("referrals:join_with_code", args=[member.invite_code])),
            "team_size": member_team_size(member, pending),
            "level": level,
            "level_counts": level_counts,
            "direct_count": level_counts[1],
            "page": page,
            "month_start": month_start,
        },
    )


# --- Share links (the /l/ redirect itself is shops.views.share_link_redirect) ------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def links(request):
    member = request.member
    shop = Shop.objects.filter(owner=member).first()
    form = ShareLinkForm(request.POST or None, shop=shop)
    if request.method == "POST" and form.is_valid():
        try:
            link = share_link_create(
                owner=member, product=form.cleaned_data["product"], campaign=form.cleaned_data["campaign"]
            )
            messages.success(request, _("Link created: %(url)s") % {"url": _link_url(link)})
            return redirect("referrals:links")
        except ShopError as error:
            form.add_error(None, error)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The embedded default runs no beat: flush the in-process counter here so the figures are current.
        clicks_flush()
    rows = [(link, _link_url(link)) for link in member_share_links(member)]
    return render(
        request,
        "referrals/links.html",
        {"shop": shop, "form": form, "rows": rows},
        status=400 if form.errors else 200,
    )


def _link_url(link) -> str:
    return absolute_url(reverse("share_link", args=[link.code]))


@login_required
@require_POST
def link_deactivate(request, link_id: int):
    member = member_for_user(request.user)
    link = member_share_link(member, link_id) if member else None
    if link is None:
        raise Http404(_("No such link."))
    share_link_deactivate(link=link)
    messages.success(request, _("Link %(code)s no longer works.") % {"code": link.code})
    return redirect("referrals:links")


def _qr_response(url: str, fmt: str, filename: str) -> HttpResponse:
    qr = segno.make(url, error="m")
    buffer = io.BytesIO()
    if fmt == "svg":
        qr.save(buffer, kind="svg", scale=8, border=2, xmldecl=False)
        content_type = "image/svg+xml"
    else:
        qr.save(buffer, kind="png", scale=10, border=2)
        content_type = "image/png"
    response = HttpResponse(buffer.getvalue(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


@login_required
def link_qr(request, link_id: int, fmt: str):
    member = member_for_user(request.user)
    link = member_share_link(member, link_id) if member else None
    if link is None:
        raise Http404(_("No such link."))
    return _qr_response(_link_url(link), fmt, f"link-{link.code}")


@login_required
def invite_qr(request, fmt: str):
    member = member_for_user(request.user)
    if member is None:
        raise Http404(_("Join the programme first."))
    url = absolute_url(reverse("referrals:join_with_code", args=[member.invite_code]))
    return _qr_response(url, fmt, f"invite-{member.invite_code}")
