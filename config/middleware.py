"""Project middleware."""

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.db import connections
from django.http import Http404
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, get_resolver
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found

from config.views import NulCharacterRejected, api_error_response, is_api_request
from core.device import device_cookie_set
from core.machine import machine_resolver

NUL = "\x00"


class ApiErrorMiddleware:
    """First in MIDDLEWARE: every error an /api/ request gets is JSON in the API's one error shape.

    DRF shapes its own errors (core.api.exception_handler) and config.views the URL-level ones; this catches the
    rest, whatever produced the page (a 500, another middleware's refusal), keeping the status and the Retry-After,
    Allow and WWW-Authenticate headers. With DEBUG on, a 5xx keeps Django's debug page for the developer.
    A write to an /api/ address without its trailing slash is a 404 that names the right address, not a redirect
    (a client following a 301 would send the write again as a GET).
    """

    KEPT_HEADERS = ("Retry-After", "Allow", "WWW-Authenticate")

    def __init__(self, get_response):
        self.get_response = get_response
        self.append_slash = CommonMiddleware(get_response)

    def __call__(self, request):
        if not is_api_request(request):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and self.append_slash.should_redirect_with_slash(request):
            message = _("Not found. The address ends with a slash: %(path)s") % {"path": f"{request.path}/"}
            return api_error_response(404, message)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code >= 500 and settings.DEBUG:
            return response
        shaped = api_error_response(response.status_code)
        for header in self.KEPT_HEADERS:
            if header in response:
                shaped[header] = response[header]
        return shaped


class RejectNulCharactersMiddleware:
    """A NUL character in the path, the query string or the session cookie is a 400 before any view runs.

    No page needs one, and PostgreSQL cannot store or even compare text that holds one: `/l/%00`, `/join/%00/`, a
    search for "%00" or a session cookie `"\\000…"` reached a query and raised DataError (a 500). Submitted forms
    are left to their fields, which refuse NUL with an error the person can fix (Django's form fields and DRF's
    serializers both carry ProhibitNullCharactersValidator); the other cookies never reach a query (the attribution
    cookie is signed, the CSRF and language cookies are checked by shape), and whatever they hold is ignored. The
    400 is config.views.bad_request: templates/400.html, or the error shape under /api/.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self.holds_nul(request):
            raise NulCharacterRejected("NUL character in the request")
        return self.get_response(request)

    @staticmethod
    def holds_nul(request) -> bool:
        query = request.META.get("QUERY_STRING", "")
        if NUL in request.path_info or "%00" in query or NUL in query:
            return True
        return NUL in request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (settings.CONTENT_SECURITY_POLICY), except on redirects.

    A 3xx carries no document for a policy to protect, and building the header costs about 40 µs a response: a
    large share of the share-link redirect, a benchmarked hot path (bench/redirect.py, docs/benchmarks.md).
    """

    def process_response(self, request, response):
        if 300 <= response.status_code < 400:
            return response
        return super().process_response(request, response)


class MachineEndpointMiddleware:
    """First in MIDDLEWARE: a view marked `@machine_endpoint` (core.machine: a provider's payment or transfer
    notification) is served here, without the page middleware below; every other request goes on down the stack.

    The marked views are found in the URLconf once, when the handler loads its middleware; reverse() still finds
    them there.
    Their database connections are not health-checked (see below).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.resolver, self.prefixes = machine_resolver(get_resolver().url_patterns)

    def __call__(self, request):
        path = request.path_info
        if not path.startswith(self.prefixes):
            return self.get_response(request)
        try:
            match = self.resolver.resolve(path)
        except Resolver404:
            return self.get_response(request)
        if RejectNulCharactersMiddleware.holds_nul(request):  # a 400 here too, as below (never a query with NUL)
            raise NulCharacterRejected("NUL character in the request")
        request.resolver_match = match
        # No health check (a round trip, CONN_HEALTH_CHECKS) before the connection's first query: if a database
        # restart left it broken, this notification fails (the provider sends it again) and the next request's
        # start closes the connection. Pages keep the check: a person would see that failure.
        for connection in connections.all(initialized_only=True):
            connection.health_check_done = True
        return match.func(request, *match.args, **match.kwargs)


class SitePagesForNotFoundInDebugMiddleware:
    """In development (DEBUG), a page that is not found gets the site's own 404 page, as in production, instead of
    Django's technical page listing every URL pattern: `make run` is also how people try the product. Set
    DEBUG_TECHNICAL_404=1 to see Django's page again. Installed only when DEBUG (config/settings.py), last, so
    CommonMiddleware still adds a missing slash first; API requests keep their JSON errors (ApiErrorMiddleware).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._applies(request):
            try:
                get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
            except Resolver404 as error:
                return page_not_found(request, error)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Http404) and self._applies(request):
            return page_not_found(request, exception)
        return None

    @staticmethod
    def _applies(request) -> bool:
        return settings.DEBUG and not settings.DEBUG_TECHNICAL_404 and not is_api_request(request)


class DeviceCookieMiddleware:
    """Sets the device cookie on the response when the view gave this browser a new one (core.device: checkout and
    sign-in only, for the fraud rules); every other response is left alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        device_cookie_set(request, response)
        return response
