"""Back-office pages under the admin prefix, each wrapped in the admin site's login and permission checks."""

from django.urls import include, path

from staff import compliance, simulator
from staff.audit import audit_log
from staff.leaderboard import leaderboard
from staff.overview import overview

app_name = "staff"

urlpatterns = [
    path("back-office/overview/", overview, name="overview"),
    path("back-office/audit/", audit_log, name="audit_log"),
    path("back-office/leaderboard/", leaderboard, name="leaderboard"),
    path("back-office/compliance/", include(compliance.urlpatterns)),
    path("back-office/simulations/", include(simulator.urlpatterns)),
]
