"""The OpenAPI generator: drf-spectacular's, with the one error shape documented on every operation.

Any operation can answer 400 (bad input), 401 (no credentials), 403 (not a member), 404 (not found, or not yours)
and 429 (throttled), all with `core.api.ErrorSerializer`; a view's own `@extend_schema(responses=...)` entry
for one of those codes wins. Kept apart from core/api.py, which DRF imports while it is itself importing.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from core.api import ERROR_DESCRIPTIONS, ErrorSerializer

ERROR_STATUSES = (400, 401, 403, 404, 429)


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        if direction != "response":
            return bodies
        for status in ERROR_STATUSES:
            if str(status) not in bodies:
                response = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(status, ""))
                bodies[str(status)] = self._get_response_for_code(response, str(status), direction=direction)
        return bodies
