"""Shared pieces of the REST API: fields and path parameters, the one error shape, pagination, the JSON parser.

Every 4xx answers ``{"code": "...", "message": "...", "fields": {"field": ["message", ...]}}``; views raise
``ApiError`` (or DRF's own exceptions, or a service's ValidationError) and `exception_handler` shapes them, always as
JSON (config.views and config.middleware.ApiErrorMiddleware shape the errors that never reach a view).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Page
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import exception_handler as drf_exception_handler

from core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, RATE_DECIMAL_PLACES, RATE_MAX_DIGITS

# --- Fields ------------------------------------------------------------------------------------------


def money_field(*, read_only: bool = True, **kwargs) -> serializers.DecimalField:
    """An amount: a string with two decimals, as many digits as the database stores (SPEC §3). Read-only (an
    answer) unless `read_only=False` (an input)."""
    return serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, read_only=read_only, **kwargs
    )


def rate_field(*, read_only: bool = True, **kwargs) -> serializers.DecimalField:
    """A rate: a fraction with four places (0.1000 = 10 %). Read-only unless `read_only=False`."""
    return serializers.DecimalField(
        max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES, read_only=read_only, **kwargs
    )


MAX_ID = 2**63 - 1  # the largest id a BigAutoField (and SQLite's integers) can hold
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2147483647}


def path_parameter(name: str, schema: dict, description: str) -> OpenApiParameter:
    """A path parameter with the exact shape its URL converter accepts (anything else never reaches the API)."""
    return OpenApiParameter(name, type=schema, location=OpenApiParameter.PATH, description=description)


# --- Errors ------------------------------------------------------------------------------------------


class ApiError(exceptions.APIException):
    """A refused request: `code` (machine-readable), `message` (for people), optional per-field messages."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message, *, code: str = "invalid", status_code: int = 400, fields: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code, self.api_code, self.fields = status_code, code, fields or {}


class Pagination(PageNumberPagination):
    """Page-number pagination. A page past the last is empty (like the end of a feed), not a 404, so a client
    paging while rows disappear never fails; a page that is not a whole number of at least 1 is a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        raw = request.query_params.get(self.page_query_param, 1)
        try:
            number = int(raw)
        except (TypeError, ValueError):
            number = 0
        if number > 1:
            paginator = self.django_paginator_class(queryset, page_size)
            if number > paginator.num_pages:
                self.request = request
                self.page = Page([], number, paginator)
                return []
        return super().paginate_queryset(queryset, request, view)

    def get_previous_link(self):
        if self.page.object_list or self.page.number <= 1:
            return super().get_previous_link()
        last = self.page.paginator.num_pages  # past the end: "previous" is the last page that has rows
        url = self.request.build_absolute_uri()
        if last <= 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, last)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters


# Deepest nesting of lists and objects a JSON body may have: no endpoint takes more than two levels.
JSON_MAX_DEPTH = 32


def json_depth_exceeds(value, limit: int) -> bool:
    """Whether lists and dicts nest in `value` deeper than `limit` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body that nests deeper than JSON_MAX_DEPTH with a 400 (`parse_error`).

    Python's json decoder recurses once per level and raised RecursionError (a 500) on 100,000 levels: that is
    caught here, and anything it parses is walked (without recursion) before a serializer, or our error shaping,
    recurses through it.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = exceptions.ParseError(
            _("JSON parse error - nested more than %(depth)d levels deep.") % {"depth": JSON_MAX_DEPTH}
        )
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if json_depth_exceeds(data, JSON_MAX_DEPTH):
            raise too_deep
        return data


def service_error(error: DjangoValidationError) -> ApiError:
    """A service's refusal (a ValidationError: ShopError, PayoutError, …) as a 400 in the one shape: its first
    message, its code ("invalid" when it has none, or names fields) and the messages of every field it names."""
    if hasattr(error, "error_dict"):
        fields = {name: [str(message) for message in messages] for name, messages in error.message_dict.items()}
        code = "invalid"
    else:
        fields = {}
        code = next((item.code for item in error.error_list if item.code), None) or "invalid"
    messages = [str(message) for message in error.messages]
    return ApiError(messages[0] if messages else _("Invalid input."), code=code, fields=fields)


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _flatten(value)]
    return [str(detail)]


def exception_handler(exc, context):
    """DRF's handler, then every error body in the one shape (404s too: they never say whether a thing exists),
    rendered as JSON whatever the request's Accept header chose (the browsable API's HTML, the schema's YAML)."""
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
    request = context.get("request")
    if request is not None:
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response


# --- The error shape in the schema --------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one shape of every 4xx body."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


ERROR_DESCRIPTIONS = {
    400: "Invalid input (`fields` names the fields).",
    401: "No valid credentials: sign in, or send `Authorization: Bearer <key>`.",
    403: "Signed in but not allowed (not a member of the programme, or a suspended member: code `suspended`).",
    404: "Not found, or not yours.",
    429: "Too many requests; see the Retry-After header.",
}


def error_responses(*status_codes: int) -> dict:
    """`responses` entries for @extend_schema: each status with the one error shape."""
    return {
        status_code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(status_code, ""))
        for status_code in status_codes
    }
