"""The living style page, /styleguide/: every component of the design system (static/css/site.css, docs/design.md)
rendered by the same templates and tags the pages use, so a change to a token or a component shows here first.

Staff only: a visitor is sent to log in, a signed-in member who is not staff gets a 404 (the page is not theirs to
know about).
"""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from core.icons import ICONS


class SampleForm(forms.Form):
    """A form shown bound with errors, so the style page shows the error beside its field."""

    name = forms.CharField(label=_("Shop name"), max_length=20, help_text=_("Up to 20 characters."))
    address = forms.CharField(label=_("Shop address"), max_length=40)
    phone = forms.CharField(label=_("Phone number"), required=False)
    method = forms.ChoiceField(
        label=_("Payout method"), choices=[("wechat", _("WeChat")), ("alipay", _("Alipay"))], initial="wechat"
    )
    agree = forms.BooleanField(label=_("I agree to the rules"), required=False)

    def clean_address(self):
        raise forms.ValidationError(_("This address is taken. Try “%(suggestion)s”.") % {"suggestion": "sun-tea-2"})


SWATCHES = ("brand", "brand-strong", "brand-soft", "ink", "muted", "line", "bg", "link", "success", "warning")
SWATCHES += ("danger", "info-soft")
SAMPLE_MONEY = [Decimal("2655.30"), Decimal("-94.33"), Decimal("1234567.89"), Decimal("0")]


def styleguide(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        raise Http404
    form = SampleForm({"name": "Sun's Tea & Treats, the very long shop name", "address": "sun-tea", "phone": ""})
    form.is_valid()
    if request.GET.get("toast"):
        for level, text in (
            (messages.SUCCESS, _("Saved.")),
            (messages.INFO, _("A sample message.")),
            (messages.WARNING, _("Check this before going on.")),
            (messages.ERROR, _("That did not work.")),
        ):
            messages.add_message(request, level, text)
    return render(
        request,
        "styleguide.html",
        {
            "form": form,
            "icons": ICONS,
            "amounts": SAMPLE_MONEY,
            "swatches": SWATCHES,
        },
    )
