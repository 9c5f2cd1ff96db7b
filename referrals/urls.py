from django.urls import path

from referrals import views

app_name = "referrals"

urlpatterns = [
    path("join/", views.join, name="join"),
    path("join/<str:invite_code>/", views.join, name="join_with_code"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
