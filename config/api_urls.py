"""/api/: version 1 of the REST API (each app's api/urls.py), the OpenAPI schema and its Swagger UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("shops.api.urls")),
    path("v1/", include("referrals.api.urls")),
    path("v1/", include("commissions.api.urls")),
    path("v1/", include("payouts.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (docs/?script=) instead of inline: the CSP
    # allows scripts from our own origin only.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
