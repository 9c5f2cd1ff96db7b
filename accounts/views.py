import functools
import time
from urllib.parse import urlencode

from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.base import AuthProcess
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts.code_steps import Step, code_check_step, code_send_step, pending_clear, pending_for
from accounts.forms import CodeForm, LoginForm, PhoneForm, ProfileForm
from accounts.login_codes import BIND, LOGIN
from accounts.models import ApiToken
from accounts.services import (
    LOGIN_AT_SESSION_KEY,
    WECHAT_PROVIDER,
    AccountError,
    token_create,
    token_revoke,
    user_bind_phone,
    user_login_methods,
    user_unbind_phone,
    user_unbind_wechat,
    user_update_profile,
)
from accounts.wechat_login import LOGIN_BACKEND, wechat_login_available, wechat_login_redirect
from core.ratelimit import rate_limited_response
from core.site_url import site_origin


@sensitive_post_parameters("current_password", "email", "phone")
@sensitive_variables("form", "data")
@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """The signed-in person's name, email and phone, and the way to their password."""
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user_update_profile(
                user=request.user, first_name=data["first_name"], email=data["email"], phone=data["phone"]
            )
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Your details are saved."))
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form}, status=400 if form.errors else 200)


class TokenForm(forms.Form):
    # Kept beside its only view: accounts/forms.py holds the sign-in and profile forms.
    name = forms.CharField(
        label=gettext_lazy("Token name"),
        max_length=60,
        help_text=gettext_lazy("Where you will use it, e.g. “mobile app” or “my website”."),
    )


@sensitive_variables("created", "context")  # the new token's plain key
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    """The person's API tokens: make one (its key is shown on this response only), see and revoke the others."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = token_create(user=request.user, name=form.cleaned_data["name"])
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            form = TokenForm()
    context = {
        "form": form,
        "created": created,
        "tokens": ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at", "-pk"),
    }
    response = render(request, "accounts/tokens.html", context, status=400 if form.errors else 200)
    response["Cache-Control"] = "no-store"  # the page may carry a plain key
    return response


@login_required
@require_POST
def token_revoke_view(request, token_id: int):
    try:
        token = token_revoke(user=request.user, token_id=token_id)
    except ApiToken.DoesNotExist:
        raise Http404 from None  # another person's token is not there, as far as this person can tell
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("accounts:tokens")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, with the emailed link built from SITE_URL: Django's own takes the request's Host header
    (its port is never checked), so a forged header would mail a reset link pointing at someone else's server."""

    @property
    def extra_email_context(self) -> dict:
        scheme, _sep, host = site_origin().partition("://")
        return {"protocol": scheme, "domain": host, "site_name": host}


# --- Logging in with a code by SMS, and with WeChat (issue #23) ------------------------------------------------


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return resolve_url(fallback)


def _code_page(request, template: str, context: dict, step: Step, form=None):
    if step.retry_after:
        return rate_limited_response(request, step.retry_after)
    status = (
        400 if (form is not None and form.errors) or (step.code_form is not None and step.code_form.errors) else 200
    )
    return render(
        request,
        template,
        {**context, "form": form, "code_form": step.code_form, "pending": step.pending},
        status=status,
    )


@sensitive_post_parameters("code", "phone")
@sensitive_variables("step", "pending")
@require_http_methods(["GET", "POST"])
def login_code(request):
    """Log in with a code by SMS: the phone, then the code sent to it (only to a number with an account; the page
    says the same either way)."""
    next_url = _safe_next(request, settings.LOGIN_REDIRECT_URL)
    context = {"next": next_url, "minutes": max(1, settings.LOGIN_CODE_SECONDS // 60)}
    form, step = PhoneForm(), Step()
    if request.method == "POST" and "code" in request.POST:
        step = code_check_step(request, purpose=LOGIN)
        if step.verified is not None:
            user = get_user_model().objects.filter(phone=step.verified["phone"], is_active=True).first()
            if user is not None:
                login(request, user, backend=LOGIN_BACKEND)
                return redirect(next_url)
            step = Step()  # the account went away meanwhile: start again
        elif step.code_form is None:
            messages.error(request, _("That code has expired. Ask for a new one."))
    elif request.method == "POST":
        form = PhoneForm(request.POST)
        if form.is_valid():
            step = code_send_step(request, purpose=LOGIN, phone=form.cleaned_data["phone"])
    elif request.GET.get("again") is None:
        pending = pending_for(request, LOGIN)
        if pending is not None:
            step = Step(code_form=CodeForm(), pending=pending)
    else:
        pending_clear(request)
    return _code_page(request, "registration/login_code.html", context, step, form)


@require_POST
def wechat_login(request):
    """Send the browser to WeChat (a QR code on a desktop, WeChat's own page inside WeChat) to log in."""
    if not wechat_login_available(request):
        raise Http404
    return wechat_login_redirect(
        request, process=AuthProcess.LOGIN, next_url=_safe_next(request, settings.LOGIN_REDIRECT_URL)
    )


# --- Ways to log in --------------------------------------------------------------------------------------------


def recent_login_required(view):
    """Adding or removing a way to log in needs a login in this session within LOGIN_RECENT_SECONDS: a browser left
    signed in must not be enough to bind someone else's phone or WeChat and unbind the owner's ("sudo mode").
    Otherwise: the login page (any way in), then back here."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not login_is_recent(request):
            return login_again(
                request, reverse("accounts:logins"), _("For your safety, log in again to change the ways you log in.")
            )
        return view(request, *args, **kwargs)

    return wrapped


def login_is_recent(request) -> bool:
    """This session logged in within LOGIN_RECENT_SECONDS (the time kept by accounts.signals)."""
    return time.time() - request.session.get(LOGIN_AT_SESSION_KEY, 0) <= settings.LOGIN_RECENT_SECONDS


def login_again(request, next_url: str, message: str):
    """The login page (any way in) with `message`, coming back to `next_url` (a page of this site) after."""
    messages.info(request, message)
    return redirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': next_url})}")


@login_required
@require_http_methods(["GET"])
def logins(request):
    """Every way this person can log in (email and password, phone, WeChat), with bind and unbind."""
    methods = user_login_methods(request.user)
    wechat_accounts = SocialAccount.objects.filter(user=request.user, provider=WECHAT_PROVIDER).order_by("pk")
    ways = int(methods["password"]) + int(methods["phone"]) + methods["wechat"]
    context = {
        "methods": methods,
        "wechat_accounts": wechat_accounts,
        "last_way": ways <= 1,
        "wechat_available": wechat_login_available(request),
    }
    return render(request, "accounts/logins.html", context)


@sensitive_post_parameters("code", "phone")
@login_required
@require_http_methods(["GET", "POST"])
@recent_login_required
def logins_phone(request):
    """Add (or change to) a phone number proven by a code sent to it."""
    context = {"minutes": max(1, settings.LOGIN_CODE_SECONDS // 60)}
    form, step = PhoneForm(), Step()
    if request.method == "POST" and "code" in request.POST:
        step = code_check_step(request, purpose=BIND)
        if step.verified is not None:
            try:
                user_bind_phone(user=request.user, phone=step.verified["phone"])
            except AccountError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, _("Your phone number is saved: you can log in with a code sent to it."))
            return redirect("accounts:logins")
        if step.code_form is None:
            messages.error(request, _("That code has expired. Ask for a new one."))
    elif request.method == "POST":
        form = PhoneForm(request.POST)
        if form.is_valid():
            step = code_send_step(request, purpose=BIND, phone=form.cleaned_data["phone"])
    return _code_page(request, "accounts/logins_phone.html", context, step, form)


@login_required
@require_POST
@recent_login_required
def logins_phone_unbind(request):
    try:
        user_unbind_phone(user=request.user)
    except AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Your phone number is removed from your account."))
    return redirect("accounts:logins")


@login_required
@require_POST
@recent_login_required
def logins_wechat_bind(request):
    """Bind WeChat: WeChat's page, then back to the list (allauth's "connect": an identity bound to another account
    is refused, never merged)."""
    if not wechat_login_available(request):
        raise Http404
    return wechat_login_redirect(request, process=AuthProcess.CONNECT, next_url=reverse("accounts:logins"))


@login_required
@require_POST
@recent_login_required
def logins_wechat_unbind(request, account_id: int):
    try:
        user_unbind_wechat(user=request.user, account_id=account_id)
    except SocialAccount.DoesNotExist:
        raise Http404 from None  # another person's binding is not there, as far as this person can tell
    except AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("WeChat is unbound from your account."))
    return redirect("accounts:logins")


class LoginView(auth_views.LoginView):
    """Django's login page (email or phone, and the password; django-axes' lockout), offering the other ways in."""

    authentication_form = LoginForm

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "wechat_login_available": wechat_login_available(self.request)}
