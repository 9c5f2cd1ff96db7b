from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.forms import ProfileForm


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """The signed-in person's name, email and phone, and the way to their password."""
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        try:
            with transaction.atomic():
                # Only the fields on the form: a full save could put back a password changed meanwhile.
                user.save(update_fields=["first_name", "email", "phone"])
        except IntegrityError:  # another account took the email or phone between validation and save
            user.refresh_from_db()
            form.add_error(None, _("Another account already uses this email address or phone number."))
        else:
            messages.success(request, _("Your details are saved."))
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form}, status=400 if form.errors else 200)
