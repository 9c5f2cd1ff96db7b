"""Project-wide error pages: JSON in the API's one error shape under /api/, Django's pages elsewhere.

`api_error_response` is the one place an /api/ error that DRF did not shape gets its body: these handlers (a URL
nothing matches, a request Django refuses, such as a body over DATA_UPLOAD_MAX_MEMORY_SIZE or a bad Host header) and
config.middleware.ApiErrorMiddleware (whatever other error page an /api/ request got: a 500, a lockout page, ...).
"""

from django.core.exceptions import BadRequest, RequestDataTooBig
from django.http import HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views import defaults

API_PREFIX = "/api/"


class NulCharacterRejected(BadRequest):
    """A NUL character in the request (config.middleware.RejectNulCharactersMiddleware): a 400."""


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def api_error_messages() -> dict[int, tuple[str, str]]:
    """The code and message of an /api/ error by its status, for errors that carry nothing more specific."""
    return {
        400: ("bad_request", _("The request could not be understood.")),
        401: ("not_authenticated", _("Authentication credentials were not provided.")),
        403: ("permission_denied", _("You do not have permission to perform this action.")),
        404: ("not_found", _("Not found.")),
        405: ("method_not_allowed", _("Method not allowed.")),
        406: ("not_acceptable", _("Could not satisfy the request Accept header.")),
        413: ("request_too_large", _("The request body is too large.")),
        415: ("unsupported_media_type", _("Unsupported media type in the request.")),
        429: ("throttled", _("Too many requests; try again later.")),
        500: ("server_error", _("Something went wrong on our side. Try again later.")),
    }


def api_error_response(status: int, message: str | None = None, code: str | None = None) -> JsonResponse:
    """An /api/ error in the one shape: `{"code", "message", "fields"}`."""
    default_code, default_message = api_error_messages().get(
        status, ("error", _("The request failed.")) if status < 500 else api_error_messages()[500]
    )
    body = {"code": code or default_code, "message": message or default_message, "fields": {}}
    return JsonResponse(body, status=status)


def not_found(request, exception=None):
    """A URL nothing matches (e.g. /api/v1/commissions/-3/ where ids are positive integers)."""
    if is_api_request(request):
        return api_error_response(404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """A request Django refuses before any view (a body too large, a Host not in ALLOWED_HOSTS, a NUL character:
    config.middleware.RejectNulCharactersMiddleware): templates/400.html, or the error shape under /api/, where a
    body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413."""
    if is_api_request(request):
        if isinstance(exception, RequestDataTooBig):
            return api_error_response(413)
        if isinstance(exception, NulCharacterRejected):
            return api_error_response(400, _("The request holds a NUL character, which is not allowed."))
        return api_error_response(400)
    return defaults.bad_request(request, exception)


def favicon(request):
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin's, the API's JSON): the app icon.

    A temporary redirect, cached for a day: the icon's address changes when collectstatic names it by its content."""
    response = HttpResponseRedirect(static("icons/favicon-32.png"))
    patch_cache_control(response, max_age=24 * 60 * 60, public=True)
    return response
