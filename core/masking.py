"""Buyers' details masked for people who may tell orders apart but not know who bought: shop owners (their order
list) and staff without `shops.view_buyer_contact` (the admin). One rule each, here, so every page masks alike."""

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
