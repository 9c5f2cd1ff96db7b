"""REST API v1 URLs of the referrals app, included under /api/v1/ by config/api_urls.py."""

app_name = "referrals-api"
urlpatterns: list = []
