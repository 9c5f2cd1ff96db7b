"""REST API v1 URLs of the commissions app, included under /api/v1/ by config/api_urls.py."""

app_name = "commissions-api"
urlpatterns: list = []
