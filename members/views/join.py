"""The join page: sign up (or, signed in, just join) under a sponsor."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts.code_steps import Step, code_check_step, code_send_step, pending_for
from accounts.forms import CodeForm, PhoneSignUpForm, SignUpForm
from accounts.login_codes import SIGNUP
from accounts.services import AccountError, user_create_by_phone
from accounts.wechat_login import wechat_login_available, wechat_login_redirect
from core.ratelimit import rate_limit, rate_limited_response
from members.wechat_signup import JOIN_INVITE_SESSION_KEY
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
    elif sponsor is not None and sponsor.is_closed:
        problem = _(
            "This member has closed their account and their shop is closed. You can still join without a sponsor."
        )
    elif sponsor is not None and not sponsor.is_active:
        problem = _("This invitation is no longer valid. You can still join without a sponsor.")
    source = None
    if not invite_code and settings.REFERRALS_JOIN_VIA_SHARE_LINK:
        # No invite link: a valid share-link cookie makes its sharer the sponsor.
        attribution = attribution_from_request(request)
        if attribution is not None:
            sponsor, source = attribution.sharer, Member.JoinSource.SHARE_LINK
    context = {
        "sponsor": sponsor if problem is None else None,
        "problem": problem,
        "invite_code": invite_code,
        "wechat_available": wechat_login_available(request),
    }

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


def _valid_sponsor(invite_code: str | None) -> Member | None:
    """The active sponsor of `invite_code`, or None (an unknown or inactive code: the person joins without one,
    as the join page offers)."""
    sponsor = member_by_invite_code(invite_code) if invite_code else None
    return sponsor if sponsor is not None and sponsor.is_active else None


@sensitive_post_parameters("code", "phone")
@sensitive_variables("step")
@require_http_methods(["GET", "POST"])
@rate_limit("join", "RATE_LIMIT_JOIN")
def join_phone(request, invite_code: str | None = None):
    """Sign up with a phone number: the name and the number, then the code sent to it (3 typed fields), under the
    sponsor of the invite code in the URL. A code goes only to a number without an account; the page says the same
    either way."""
    if member_for_user(request.user) is not None:
        messages.info(request, _("You are already a member."))
        return redirect("members:dashboard")
    if request.user.is_authenticated:
        return redirect(request.path.removesuffix("phone/"))  # signed in: the join page joins with one tap
    sponsor = _valid_sponsor(invite_code)
    context = {"sponsor": sponsor, "invite_code": invite_code, "minutes": max(1, settings.LOGIN_CODE_SECONDS // 60)}
    form, step = PhoneSignUpForm(), Step()
    if request.method == "POST" and "code" in request.POST:
        step = code_check_step(request, purpose=SIGNUP)
        if step.verified is not None:
            sponsor = _valid_sponsor(step.verified.get("invite_code"))
            try:
                with transaction.atomic():
                    user = user_create_by_phone(phone=step.verified["phone"], first_name=step.verified["first_name"])
                    member_join(user=user, sponsor=sponsor)
            except (AccountError, ReferralError) as error:
                messages.error(request, str(error) if isinstance(error, AccountError) else " ".join(error.messages))
                return redirect(request.path)
            login(request, user, backend=LOGIN_BACKEND)
            messages.success(request, _("Welcome! You have joined."))
            return redirect("members:my_shop")  # a new member has no shop: straight to opening their free one
        if step.code_form is None:
            messages.error(request, _("That code has expired. Ask for a new one."))
    elif request.method == "POST":
        form = PhoneSignUpForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            step = code_send_step(
                request, purpose=SIGNUP, phone=data["phone"], first_name=data["first_name"], invite_code=invite_code
            )
    elif request.GET.get("again") is None:
        pending = pending_for(request, SIGNUP)
        if pending is not None and pending.get("invite_code") == invite_code:
            step = Step(code_form=CodeForm(), pending=pending)
    if step.retry_after:
        return rate_limited_response(request, step.retry_after)
    has_errors = form.errors or (step.code_form is not None and step.code_form.errors)
    context.update({"form": form, "code_form": step.code_form, "pending": step.pending})
    return render(request, "members/join_phone.html", context, status=400 if has_errors else 200)


@require_POST
@rate_limit("join", "RATE_LIMIT_JOIN")
def join_wechat(request, invite_code: str | None = None):
    """Sign up (or log in) with WeChat from the join page: the invite code waits in the session for WeChat to send
    the browser back, and a new account joins under its sponsor (members.wechat_signup)."""
    if not wechat_login_available(request):
        raise Http404
    if request.user.is_authenticated:
        return redirect(request.path.removesuffix("wechat/"))
    if _valid_sponsor(invite_code) is not None:
        request.session[JOIN_INVITE_SESSION_KEY] = invite_code
    else:
        request.session.pop(JOIN_INVITE_SESSION_KEY, None)
    return wechat_login_redirect(request, next_url=reverse("members:dashboard"))
