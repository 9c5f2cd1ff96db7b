"""Form building blocks shared by the apps: a rate field, and a service's refusal shown on a form."""

from django import forms
from django.core.exceptions import ValidationError

from core.money import RATE_DECIMAL_PLACES, RATE_MAX_DIGITS, RATE_ONE, RATE_ZERO


def rate_field(label, *, required: bool = True, help_text: str = "") -> forms.DecimalField:
    """A rate as a fraction with four places, 0 to 1 (0.5000 is 50 %), like core.money.RateField."""
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=RATE_MAX_DIGITS,
        decimal_places=RATE_DECIMAL_PLACES,
        min_value=RATE_ZERO,
        max_value=RATE_ONE,
        help_text=help_text,
    )


def add_service_errors(form: forms.Form, error: ValidationError, *, field: str | None = None) -> None:
    """Show a service's refusal on `form`.

    A message the service gave for a field the form has goes beside that field; a message for any other name
    (a model field the form does not show, `__all__`) goes to the top of the form. A refusal that names no field
    goes to `field` (default: the top of the form). Never raises for a name the form does not know, so a service
    may name whatever it validates.
    """
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(field, error.messages)
