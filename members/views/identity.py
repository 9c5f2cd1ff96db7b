"""The member's identity page (实名, issue #24): capture the legal name and ID once, see it masked and its state.

Only the signed-in person's own identity is ever shown (there is no identity id in any URL), and only masked:
nobody reads the full values on a member page, not even their owner. Changes after capture go through staff.
"""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts.identity import (
    IdentityError,
    identity_capture,
    identity_for_user,
    identity_masked,
    identity_register_business,
    identity_verify,
)
from accounts.models import Identity
from core.forms import add_service_errors
from core.ratelimit import rate_limit_exceeded, rate_limited_response
from members.decorators import member_required
from members.forms import BusinessPayeeForm, IdentityForm


@sensitive_post_parameters("legal_name", "id_number")
@sensitive_variables("form")
@member_required(suspended_may_read=True)
@require_http_methods(["GET", "POST"])
def identity_page(request):
    identity = identity_for_user(request.user)
    form = IdentityForm(request.POST or None) if identity is None else None
    if request.method == "POST":
        if form is None:
            messages.error(request, _("Your identity is already on file; contact support to change it."))
            return redirect("members:identity")
        if form.is_valid():
            try:
                identity = identity_capture(user=request.user, **form.cleaned_data)
            except IdentityError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _status_message(identity))
                return redirect("members:identity")
    return _render(request, identity, form=form, business_form=BusinessPayeeForm())


def _render(request, identity, *, form=None, business_form=None):
    context = {
        "identity": identity_masked(identity) if identity else None,
        "form": form,
        "business_form": business_form,
        "can_check_again": bool(
            identity and identity.status == Identity.Status.PENDING and identity.id_type == Identity.IdType.RESIDENT_ID
        ),
    }
    has_errors = (form is not None and form.errors) or (business_form is not None and business_form.errors)
    return render(request, "members/identity.html", context, status=400 if has_errors else 200)


def _status_message(identity) -> str:
    if identity.status == Identity.Status.VERIFIED:
        return _("Your identity is verified. You can now withdraw.")
    if identity.status == Identity.Status.FAILED:
        return _("Your name and ID number could not be verified; contact support to correct them.")
    return _("Your identity is saved and is being verified.")


@member_required
@require_POST
def identity_check_again(request):
    """Ask the verification provider again after it could not answer (an outage, its daily limit). Each ask costs a
    paid check: counted per person, settings.RATE_LIMIT_IDENTITY_CHECK, then the 429 page."""
    identity = identity_for_user(request.user)
    if identity is not None and identity.status == Identity.Status.PENDING:
        retry_after = rate_limit_exceeded("identity_check", str(request.user.pk), settings.RATE_LIMIT_IDENTITY_CHECK)
        if retry_after:
            return rate_limited_response(request, retry_after)
        identity = identity_verify(identity=identity, actor=request.user)
        messages.info(request, _status_message(identity))
    return redirect("members:identity")


@member_required
@require_POST
def identity_business(request):
    identity = identity_for_user(request.user)
    if identity is None:
        messages.error(request, _("Enter your legal identity first."))
        return redirect("members:identity")
    form = BusinessPayeeForm(request.POST)
    if form.is_valid():
        try:
            identity_register_business(identity=identity, actor=request.user, **form.cleaned_data)
        except IdentityError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Registered as a business payee."))
            return redirect("members:identity")
    return _render(request, identity, business_form=form)
