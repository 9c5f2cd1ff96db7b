"""/api/: version 1 of the REST API (the member API, members/api/urls.py, and the shops' public reads), the OpenAPI
schema and its Swagger UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("v1/", include("members.api.urls")),
    path("v1/", include("shops.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (docs/?script=) instead of inline: the CSP
    # allows scripts from our own origin only.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
