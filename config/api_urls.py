"""/api/: version 1 of the REST API (each app's api/urls.py), the OpenAPI schema and its Swagger UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("shops.api.urls")),
    path("v1/", include("referrals.api.urls")),
    path("v1/", include("commissions.api.urls")),
    path("v1/", include("payouts.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
