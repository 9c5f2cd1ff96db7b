"""The join page: sign up (or, signed in, just join) under a sponsor."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.forms import SignUpForm
from core.ratelimit import rate_limit
from referrals.models import Member
from referrals.selectors import member_by_invite_code, member_for_user
from referrals.services import ReferralError, member_join
from shops.attribution import attribution_from_request

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
        return redirect("members:dashboard")
    if problem is not None:
        return render(request, "members/join.html", context, status=404 if sponsor is None else 200)

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
            return render(request, "members/join.html", {**context, "form": form})
        if form is not None:
            login(request, user, backend=LOGIN_BACKEND)
        messages.success(request, _("Welcome! You have joined."))
        return redirect("members:my_shop")  # a new member has no shop: straight to opening their free one
    context["form"] = form
    return render(request, "members/join.html", context)
