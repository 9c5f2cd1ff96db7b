"""Phone numbers in one form everywhere: E.164, e.g. "+8613800138000" (issue #19).

Buyers and members type a number as they please: "+86 138-0013-8000", "13800138000", "138 0013 8000" and
"+8613800138000" are one number. It is parsed with libphonenumber's rules (the maintained `phonenumbers`
package) in the deployment's default region, `settings.PHONE_DEFAULT_REGION` ("CN" unless set): a number typed
without a country code is a number of that region. Every form that takes a phone (checkout, sign-up, the profile,
staff's user form) stores the E.164 form, and every look-up (the buyer's order look-up, the login) turns what is
typed into the same form first, so any spelling finds any other.

Numbers stored before this existed were normalised by a data migration (shops 0005, accounts 0003); the few that
are not valid numbers were kept with their separators removed, as they were stored then, and `phone_lookup_value`
still finds them when the same digits are typed.
"""

import re

import phonenumbers
from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

__all__ = ["PHONE_MAX_LENGTH", "PhoneNumberField", "phone_e164", "phone_lookup_value"]

PHONE_MAX_LENGTH = 20  # the columns' length: E.164 is at most 16 characters ("+" and 15 digits)
TYPED_MAX_LENGTH = 32  # what a person may type, separators included
# What the forms before issue #19 stripped from a number before storing it; kept for finding what they stored.
LEGACY_SEPARATORS = re.compile(r"[\s\-().]")
LEGACY_SHAPE = re.compile(r"\+?[0-9]{5,19}")


def phone_e164(typed: str | None, *, region: str | None = None) -> str | None:
    """The E.164 form of a valid phone number in any usual spelling (country code optional in `region`, by
    default settings.PHONE_DEFAULT_REGION), else None."""
    typed = (typed or "").strip()
    if not typed or len(typed) > TYPED_MAX_LENGTH:
        return None
    try:
        number = phonenumbers.parse(typed, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_lookup_value(typed: str | None) -> str | None:
    """What a stored phone equals when it is the number typed: its E.164 form; for text that is no valid number
    but is shaped like one, the digits as the forms before issue #19 stored them (a number they stored that the
    migration could not normalise); None for anything else."""
    e164 = phone_e164(typed)
    if e164 is not None:
        return e164
    legacy = LEGACY_SEPARATORS.sub("", (typed or "").strip())
    return legacy if LEGACY_SHAPE.fullmatch(legacy) else None


def _example_numbers() -> dict[str, str]:
    region = settings.PHONE_DEFAULT_REGION
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:  # a region without mobile numbers of its own
        example = phonenumbers.example_number(region)
    return {
        "national": phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL),
        "international": phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    }


class PhoneNumberField(forms.CharField):
    """A phone number typed in any usual spelling, cleaned to its E.164 form ("" when left empty and optional).

    Not a number of the default region nor one with a country code: a form error naming both ways to write one.
    """

    default_error_messages = {
        "invalid": _(
            "Enter a valid phone number, e.g. %(national)s, or with the country code, e.g. %(international)s."
        ),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", TYPED_MAX_LENGTH)
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return ""
        e164 = phone_e164(value)
        if e164 is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid", params=_example_numbers())
        return e164
