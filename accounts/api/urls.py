"""REST API v1 URLs of the accounts app, included under /api/v1/ by config/api_urls.py."""

app_name = "accounts-api"
urlpatterns: list = []
