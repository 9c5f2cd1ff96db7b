from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ProfileForm
from accounts.models import ApiToken
from accounts.services import AccountError, token_create, token_revoke, user_update_profile
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
