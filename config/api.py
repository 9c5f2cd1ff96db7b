"""Shared pieces of the REST API: the member permission, the one error shape, pagination.

Every 4xx answers ``{"code": "...", "message": "...", "fields": {"field": ["message", ...]}}``; views raise
``ApiError`` (or DRF's own exceptions, or a service's ValidationError) and `exception_handler` shapes them.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """A refused request: `code` (machine-readable), `message` (for people), optional per-field messages."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message, *, code: str = "invalid", status_code: int = 400, fields: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code, self.api_code, self.fields = status_code, code, fields or {}


class IsMember(BasePermission):
    """Signed in (token or session) and a member of the programme; puts the member on `request.member`."""

    message = _("Join the programme first.")

    def has_permission(self, request, view) -> bool:
        from referrals.selectors import member_for_user

        if not (request.user and request.user.is_authenticated):
            return False
        request.member = member_for_user(request.user)
        return request.member is not None


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _flatten(value)]
    return [str(detail)]


def exception_handler(exc, context):
    """DRF's handler, then every error body in the one shape (404s too: they never say whether a thing exists)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        body = {"code": exc.api_code, "message": str(exc.detail), "fields": exc.fields}
    elif isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = {name: [str(message) for message in _flatten(value)] for name, value in detail.items()}
        messages = [message for value in fields.values() for message in value]
        body = {"code": "invalid", "message": messages[0] if messages else str(_("Invalid input.")), "fields": fields}
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        body = {"code": codes if isinstance(codes, str) else "error", "message": str(exc.detail), "fields": {}}
    response.data = body  # keeps DRF's status and headers (Retry-After on 429, WWW-Authenticate on 401)
    return response
