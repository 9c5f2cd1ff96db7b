"""What django-axes counts login failures against (settings.AXES_USERNAME_CALLABLE).

People sign in with their email address (any case) or their phone number (any spelling, compared in E.164
form: core.phones), see accounts.backends.EmailOrPhoneBackend. Counting failures per typed text would give an
attacker a fresh allowance for every spelling ("A@x.com", "a@x.com", "138 0013 8000", "13800138000"), so failures
count against the account the identifier resolves to ("user:<id>"); an identifier that matches no account counts
against its normalised form, so guessing at unknown names is limited too and a later sign-up cannot be pre-locked
under another spelling.
"""

import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import render

from accounts.backends import login_matches
from core.phones import phone_lookup_value


def normalise_identifier(typed: str) -> str:
    typed = (typed or "").strip()
    if "@" in typed:
        return typed.lower()
    return phone_lookup_value(typed) or typed


def login_identifier(request, credentials: dict | None = None) -> str:
    credentials = credentials or {}
    typed = credentials.get("username")
    if typed is None and request is not None:
        typed = request.POST.get("username", "")
    typed = (typed or "").strip()
    if not typed:
        return ""
    user_id = get_user_model().objects.filter(login_matches(typed)).order_by("pk").values_list("pk", flat=True).first()
    return f"user:{user_id}" if user_id is not None else f"login:{normalise_identifier(typed)[:200]}"


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out login gets (settings.AXES_LOCKOUT_CALLABLE): a 429 that says when to try again, for
    the login page and the admin login alike, with Retry-After for scripts. An address lockout (the backend put
    `login_retry_after` on the request) says that every account is paused from here, and until when."""
    address_retry_after = getattr(request, "login_retry_after", None)
    seconds = address_retry_after or settings.AXES_COOLOFF_MINUTES * 60
    context = {"minutes": max(1, math.ceil(seconds / 60)), "whole_address": bool(address_retry_after)}
    response = render(request, "accounts/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
