"""API token authentication (keys made on /account/tokens/) and its description in the OpenAPI schema.

Kept out of core/api.py: DRF imports authentication classes while rest_framework.views is still loading, so
this module must not import rest_framework.views (core/api.py does, for the exception handler).
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` (or `Token <key>`) with a key made on /account/tokens/.

    No such header: not this scheme (session authentication may still apply). A revoked, unknown or malformed
    key: 401 in the one error shape, never a fallback to the session.
    """

    keywords = ("bearer", "token")

    def authenticate(self, request):
        from accounts.services import token_authenticate

        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header."))
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token header.")) from None
        token = token_authenticate(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A key made on /account/tokens/, as `Authorization: Bearer <key>` (or `Token <key>`).",
        }
