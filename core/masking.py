"""Buyers' details masked for people who may tell orders apart but not know who bought: shop owners (their order
list) and staff without `shops.view_buyer_contact` (the admin). One rule each, here, so every page masks alike."""

import re

import phonenumbers
from django.conf import settings


def mask_name(name: str) -> str:
    """`Wang Fang` → `W**`, `王芳` → `王**`: enough to tell two orders apart on the phone, not enough to identify the
    buyer."""
    name = (name or "").strip()
    return f"{name[:1]}**" if name else "—"


def mask_phone(phone: str) -> str:
    """`+8613900001111` → `139****1111`, as Chinese apps show a number: the first three and last four digits of the
    national number, the country code only for a number of another region (`+44 791****3456`). A stored value that
    is no valid number keeps its last four digits only; empty for none."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, settings.PHONE_DEFAULT_REGION)
        national = phonenumbers.national_significant_number(number)
        region = phonenumbers.region_code_for_number(number)
    except phonenumbers.NumberParseException:
        national, region = "".join(ch for ch in phone if ch.isdigit()), settings.PHONE_DEFAULT_REGION
    if len(national) < 8:
        return "****" + national[-4:] if len(national) > 4 else "****"
    masked = f"{national[:3]}****{national[-4:]}"
    return masked if region == settings.PHONE_DEFAULT_REGION else f"+{number.country_code} {masked}"


def mask_email(email: str) -> str:
    """`wang.fang@example.com` → `w***@example.com`; empty for none."""
    local, _at, domain = (email or "").strip().partition("@")
    if not local:
        return ""
    return f"{local[:1]}***@{domain}" if domain else f"{local[:1]}***"


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+\d{7,15}\b|(?<!\d)1[3-9]\d{9}(?!\d)")  # E.164 as stored; a Chinese mobile


def mask_contacts(text: str) -> str:
    """`text` with every email address and phone number in it masked (mask_email, mask_phone): for free text
    (a reason, a summary) that quotes someone's contact details and leaves the back office. Order numbers (a date
    and digits) are not phone numbers: only a number written with its + or an 11-digit Chinese mobile is."""
    text = _EMAIL.sub(lambda match: mask_email(match.group()), text or "")
    return _PHONE.sub(lambda match: mask_phone(match.group()), text)
