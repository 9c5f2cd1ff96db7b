from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q

from accounts.address_limit import address_lockout_retry_after
from core.phones import phone_lookup_value


def login_matches(login: str) -> Q:
    """The accounts a typed login names: the email address in any case, or the phone number in any spelling (phones
    are stored in E.164 form, core.phones: "138 0013 8000", "+86 138-0013-8000" and "13800138000" are one)."""
    phone = phone_lookup_value(login)
    return Q(email__iexact=login) | Q(phone=phone) if phone else Q(email__iexact=login)


class EmailOrPhoneBackend(ModelBackend):
    """Sign in with the email address (any case) or the phone number on file."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        User = get_user_model()
        login = (username or kwargs.get(User.USERNAME_FIELD) or "").strip()
        if not login or password is None:
            return None
        user = User.objects.filter(login_matches(login)).order_by("pk").first()
        if user is None:
            # Spend the same time as a real check, so timing does not reveal who exists.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class LoginLockoutBackend(AxesStandaloneBackend):
    """The lockout checks, first in AUTHENTICATION_BACKENDS, before any password is checked: an address that failed
    on too many accounts (accounts.address_limit, settings.RATE_LIMIT_LOGIN_ACCOUNTS), then django-axes' locked-out
    (identifier, address). Either refusal marks the request, so AxesMiddleware answers with the lockout page and the
    failure it causes is not counted again (accounts.signals).

    Every login that comes over HTTP passes its request (the login page, the admin login, DRF); a call without one
    (the shell, a management command, the test client's login()) has nobody to lock out, and axes would raise.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        retry_after = address_lockout_retry_after(request)
        if retry_after:
            request.axes_locked_out, request.login_retry_after, request.login_refused = True, retry_after, True
            raise AxesBackendPermissionDenied("too many accounts failed to log in from this address")
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            request.login_refused = True
            raise
