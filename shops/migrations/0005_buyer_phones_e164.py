"""Buyers' phone numbers in one form, E.164 (issue #19), so the order look-up finds orders placed before it too.

Checkout stored the number as typed ("+86 138-0013-8000", "138 0013 8000"); the look-up compared the typed text
with it and found nothing for another spelling. Each stored number that is a valid number (country code optional
in settings.PHONE_DEFAULT_REGION) becomes its E.164 form; one that is not keeps its digits without separators,
which the look-up still finds when the same digits are typed (core.phones.phone_lookup_value). Not reversible
in the sense of giving back the spellings: reversing leaves the normalised numbers as they are.
"""

import re

import phonenumbers
from django.conf import settings
from django.db import migrations

SEPARATORS = re.compile(r"[\s\-().]")
BATCH = 2000


def normalised(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return SEPARATORS.sub("", phone)


def normalise_buyer_phones(apps, schema_editor):
    Order = apps.get_model("shops", "Order")
    changed = []
    for pk, phone in Order.objects.exclude(buyer_phone="").values_list("pk", "buyer_phone").iterator(chunk_size=BATCH):
        value = normalised(phone)
        if value and value != phone:
            changed.append(Order(pk=pk, buyer_phone=value))
        if len(changed) >= BATCH:
            Order.objects.bulk_update(changed, ["buyer_phone"])
            changed = []
    if changed:
        Order.objects.bulk_update(changed, ["buyer_phone"])


class Migration(migrations.Migration):
    dependencies = [("shops", "0004_image_upload_validation")]

    operations = [migrations.RunPython(normalise_buyer_phones, migrations.RunPython.noop, elidable=True)]
