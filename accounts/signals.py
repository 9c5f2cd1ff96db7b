"""A password change revokes the person's API tokens, whichever way the password changed; a failed login counts
against the client's address.

Two signal receivers, against the house rule ("call the relevant logic explicitly"), because the
password is changed by code we do not own: Django's password-change and password-reset views, the admin's
set-password form, `manage.py changepassword`, `user.set_password()` in a shell. All of them end in
`AbstractBaseUser.save()` with `_password` set by `set_password()`, which is also how Django itself decides to
call the password validators' `password_changed()`; a hash upgrade at login clears `_password` first, so it is not a
change. Sessions need nothing here: their hash is derived from the password hash, so Django signs every other
session out by itself (the view that changed it keeps its own via `update_session_auth_hash`).
A failed or successful login is likewise only known to Django's `authenticate()` and `login()`, which send
`user_login_failed` and `user_logged_in` (django-axes counts and resets its failures from the same signals); the
time of the session's last login is kept from the latter too (logins come from our pages, Django's and allauth's).
"""

import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.address_limit import address_failure_forgiven, address_failure_record
from accounts.lockout import login_identifier
from accounts.services import LOGIN_AT_SESSION_KEY, user_tokens_revoke_all


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.api_tokens_revoked_on_password_change")
def api_tokens_revoked_on_password_change(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created:
        return  # a new person has no tokens yet
    password_saved = update_fields is None or "password" in update_fields
    changed = password_saved and getattr(instance, "_password", None) is not None  # set_password() before this save
    disabled = password_saved and not instance.has_usable_password()  # set_unusable_password(), e.g. in the admin
    if changed or disabled:
        user_tokens_revoke_all(user=instance)


@receiver(user_login_failed, dispatch_uid="accounts.login_failure_counted_per_address")
def login_failure_counted_per_address(sender, credentials, request=None, **kwargs) -> None:
    """A wrong password (or unknown login) counts against the address; a login refused by a lockout, before any
    password was checked, does not."""
    if request is None or getattr(request, "login_refused", False):
        return
    address_failure_record(request, login_identifier(request, credentials))


@receiver(user_logged_in, dispatch_uid="accounts.login_failure_forgiven_per_address")
def login_failure_forgiven_per_address(sender, request, user, **kwargs) -> None:
    if request is not None:
        address_failure_forgiven(request, user)


@receiver(user_logged_in, dispatch_uid="accounts.login_time_kept_in_session")
def login_time_kept_in_session(sender, request, user, **kwargs) -> None:
    """When this session last logged in, whichever way (password, code, WeChat): adding or removing a way to log in
    asks for a recent one (accounts.views.recent_login_required)."""
    if request is not None and hasattr(request, "session"):
        request.session[LOGIN_AT_SESSION_KEY] = int(time.time())
