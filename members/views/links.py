"""The member's share links (/dashboard/links/) and the QR codes of their links and invite link. The /l/ redirect
itself is the storefront's (`shops.views.share_link_redirect`)."""

import io

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from members.decorators import member_required
from members.forms import ShareLinkForm
from members.links import invite_url, share_link_url
from referrals.models import Member
from referrals.selectors import member_for_user
from shops.selectors import attribution_options, member_share_link, member_share_links, owner_shop
from shops.services import ShopError, clicks_flush, coupon_code_for_member, share_link_create, share_link_deactivate


@member_required
@require_http_methods(["GET", "POST"])
def links(request):
    member = request.member
    shop = owner_shop(member)
    form = ShareLinkForm(request.POST or None, shop=shop)
    if request.method == "POST" and form.is_valid():
        try:
            link = share_link_create(
                owner=member, product=form.cleaned_data["product"], campaign=form.cleaned_data["campaign"]
            )
            messages.success(request, _("Link created: %(url)s") % {"url": share_link_url(link)})
            return redirect("members:links")
        except ShopError as error:
            form.add_error(None, error)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The embedded default runs no beat: flush the in-process counter here so the figures are current.
        clicks_flush()
    rows = [(link, share_link_url(link)) for link in member_share_links(member)]
    options = attribution_options()
    coupon = None
    if options.coupons_enabled and member.status == Member.Status.ACTIVE:
        coupon = coupon_code_for_member(member=member)  # made the first time the member sees it, then the same
    return render(
        request,
        "members/links.html",
        {"shop": shop, "form": form, "rows": rows, "coupon": coupon, "options": options},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def link_deactivate(request, link_id: int):
    member = member_for_user(request.user)
    link = member_share_link(member, link_id) if member else None
    if link is None:
        raise Http404(_("No such link."))
    share_link_deactivate(link=link)
    messages.success(request, _("Link %(code)s no longer works.") % {"code": link.code})
    return redirect("members:links")


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
    return _qr_response(share_link_url(link), fmt, f"link-{link.code}")


@login_required
def invite_qr(request, fmt: str):
    member = member_for_user(request.user)
    if member is None:
        raise Http404(_("Join the programme first."))
    return _qr_response(invite_url(member), fmt, f"invite-{member.invite_code}")
