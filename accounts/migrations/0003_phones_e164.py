"""Members' phone numbers (a login) in one form, E.164 (issue #19), so any spelling of the number logs in.

The profile form stored the number with its separators removed ("13800138000", "+8613800138000"), so the same
number could be stored in two spellings on two accounts. Each number that is valid (country code optional in
settings.PHONE_DEFAULT_REGION) becomes its E.164 form; one that is not is left as it is (the login still finds it
when the same digits are typed). When two accounts hold the same number in different spellings, the one already in
E.164 form, else the older account, gets it; the other keeps its old spelling, which no login reaches any more (that
person logs in with their email), and the migration prints it for staff to sort out.
"""

from collections import defaultdict

import phonenumbers
from django.conf import settings
from django.db import migrations


def e164(phone: str) -> str | None:
    try:
        number = phonenumbers.parse(phone, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_user_phones(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    holders = defaultdict(list)  # E.164 -> [(pk, stored)], oldest account first
    for pk, phone in User.objects.exclude(phone__isnull=True).exclude(phone="").order_by("pk").values_list("pk", "phone"):
        value = e164(phone)
        if value is not None:
            holders[value].append((pk, phone))
    for value, accounts in holders.items():
        keeper = next((pk for pk, phone in accounts if phone == value), accounts[0][0])
        for pk, phone in accounts:
            if pk == keeper:
                if phone != value:
                    User.objects.filter(pk=pk).update(phone=value)
            else:
                print(f"\n  user {pk}: phone {phone!r} is the number of user {keeper} too; left as it was", end="")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_api_token")]

    operations = [migrations.RunPython(normalise_user_phones, migrations.RunPython.noop, elidable=True)]
