"""REST API v1 URLs of the commissions app, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from commissions.api import views

app_name = "commissions-api"
urlpatterns = [
    path("commissions/", views.CommissionEntriesListApi.as_view(), name="entries"),
    path("commissions/summary/", views.CommissionSummaryApi.as_view(), name="summary"),
    path("commissions/<int:entry_id>/", views.CommissionEntryDetailApi.as_view(), name="entry_detail"),
]
