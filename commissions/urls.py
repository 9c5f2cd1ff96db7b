from django.urls import path

from commissions import views

app_name = "commissions"

urlpatterns = [
    path("dashboard/commissions/", views.commission_entries, name="entries"),
    path("dashboard/commissions/<int:entry_id>/", views.commission_entry_detail, name="entry_detail"),
]
