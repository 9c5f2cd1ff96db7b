from django.urls import path, re_path

from referrals import views
from referrals.decorators import suspended_refused

app_name = "referrals"

# The dashboard, link deactivation and QR views look the member up themselves (not through member_required), so
# a suspended member is refused here; the other member pages refuse one in member_required.
urlpatterns = [
    path("join/", views.join, name="join"),
    path("join/<str:invite_code>/", views.join, name="join_with_code"),
    path("dashboard/", suspended_refused(views.dashboard), name="dashboard"),
    path("dashboard/team/", views.team, name="team"),
    path("dashboard/links/", views.links, name="links"),
    path(
        "dashboard/links/<int:link_id>/deactivate/",
        suspended_refused(views.link_deactivate),
        name="link_deactivate",
    ),
    re_path(
        r"^dashboard/links/(?P<link_id>[0-9]+)/qr\.(?P<fmt>svg|png)$", suspended_refused(views.link_qr), name="link_qr"
    ),
    re_path(r"^dashboard/invite/qr\.(?P<fmt>svg|png)$", suspended_refused(views.invite_qr), name="invite_qr"),
]
