from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.forms import ProfileForm
from accounts.services import AccountError, user_update_profile


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
