"""API throttles: per token, per session user and per anonymous IP, rates from settings.API_THROTTLE_RATES.

A refused request is a 429 with Retry-After, in the one error shape (core.api.exception_handler). The count is a
sliding window kept atomically (core.ratelimit.sliding_window_hit): DRF's own throttle reads its history, then
writes it back, so parallel requests each saw room and all got in (651 of 1,200 in a minute against 600).
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from core.client_ip import client_ip
from core.ratelimit import sliding_window_hit


class _SettingsRateThrottle(SimpleRateThrottle):
    """Rates come from settings.API_THROTTLE_RATES, read per request so tests (and settings) can change them."""

    def __init__(self):
        self.retry_after = None  # the rate is read in allow_request, not once at construction

    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        rate = self.get_rate()
        if rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        limit, window = self.parse_rate(rate)
        self.retry_after = sliding_window_hit(key, limit, window)
        return not self.retry_after

    def wait(self):
        """Seconds until one more request would be admitted (the Retry-After header)."""
        return self.retry_after


class TokenRateThrottle(_SettingsRateThrottle):
    """Requests made with API tokens, counted per person: making more tokens does not buy a higher rate."""

    scope = "token"

    def get_cache_key(self, request, view):
        from accounts.models import ApiToken  # not at import: DRF loads throttles while rest_framework loads

        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.user_id}


class UserRateThrottle(_SettingsRateThrottle):
    """Per person signed in with a session (token requests are counted per token instead)."""

    scope = "user"

    def get_cache_key(self, request, view):
        from accounts.models import ApiToken

        if not request.user.is_authenticated or isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonRateThrottle(_SettingsRateThrottle):
    """Per client IP address, for requests without credentials."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def get_ident(self, request) -> str:
        """The client's address by the project's one rule (core.client_ip): never a header the client chose."""
        return client_ip(request)
