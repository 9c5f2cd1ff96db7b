from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.forms import SignUpForm
from referrals.selectors import member_by_invite_code, member_for_user
from referrals.services import ReferralError, member_join

LOGIN_BACKEND = "accounts.backends.EmailOrPhoneBackend"


@require_http_methods(["GET", "POST"])
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
                member_join(user=user, sponsor=sponsor)
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
    member = member_for_user(request.user)
    if member is None:
        messages.info(request, _("Join the programme to get your shop and invite link."))
        return redirect("referrals:join")
    invite_url = request.build_absolute_uri(reverse("referrals:join_with_code", args=[member.invite_code]))
    return render(
        request,
        "referrals/dashboard.html",
        {
            "member": member,
            "invite_url": invite_url,
            "team_size": member.get_descendant_count(),
            "direct_count": member.get_children().count(),
        },
    )
