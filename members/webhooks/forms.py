"""The endpoint form, shared by the member page and the admin. It only parses; the services decide (the URL rule,
the events) and their refusals go beside the field they name (core.forms.add_service_errors)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from members.webhooks.models import EventType


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("Endpoint URL"),
        max_length=500,
        help_text=_(
            "Where we POST the events, e.g. https://example.com/hooks/cps. It must answer 2xx within 10 seconds."
        ),
        widget=forms.URLInput(attrs={"placeholder": "https://", "autocomplete": "off", "inputmode": "url"}),
    )
    description = forms.CharField(label=_("Description"), max_length=100, required=False)
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event.")},
    )
