"""Project-wide error pages: JSON in the API's one error shape under /api/, Django's pages elsewhere."""

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults


def not_found(request, exception=None):
    """A URL nothing matches (e.g. /api/v1/commissions/-3/ where ids are positive integers)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": _("Not found."), "fields": {}}, status=404)
    return defaults.page_not_found(request, exception)
