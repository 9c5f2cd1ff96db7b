"""REST API v1 URLs of the shops app, included under /api/v1/ by config/api_urls.py."""

app_name = "shops-api"
urlpatterns: list = []
