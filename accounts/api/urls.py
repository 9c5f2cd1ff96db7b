"""REST API v1 URLs of the accounts app, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from accounts.api.views import MeApi

app_name = "accounts-api"
urlpatterns = [
    path("me/", MeApi.as_view(), name="me"),
]
