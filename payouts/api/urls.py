"""REST API v1 URLs of the payouts app, included under /api/v1/ by config/api_urls.py."""

app_name = "payouts-api"
urlpatterns: list = []
