from django.urls import path, re_path

from referrals import views

app_name = "referrals"

urlpatterns = [
    path("join/", views.join, name="join"),
    path("join/<str:invite_code>/", views.join, name="join_with_code"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/team/", views.team, name="team"),
    path("dashboard/links/", views.links, name="links"),
    path("dashboard/links/<int:link_id>/deactivate/", views.link_deactivate, name="link_deactivate"),
    re_path(r"^dashboard/links/(?P<link_id>[0-9]+)/qr\.(?P<fmt>svg|png)$", views.link_qr, name="link_qr"),
    re_path(r"^dashboard/invite/qr\.(?P<fmt>svg|png)$", views.invite_qr, name="invite_qr"),
]
