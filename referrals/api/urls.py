"""REST API v1 URLs of the referrals app, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from referrals.api import views

app_name = "referrals-api"
urlpatterns = [
    path("links/", views.MemberLinksListApi.as_view(), name="links"),
    path("links/create/", views.MemberLinkCreateApi.as_view(), name="link_create"),
    path("links/<int:link_id>/deactivate/", views.MemberLinkDeactivateApi.as_view(), name="link_deactivate"),
    path("team/", views.MemberTeamApi.as_view(), name="team"),
    path("team/members/", views.MemberTeamLevelApi.as_view(), name="team_members"),
    path("orders/", views.MemberOrdersListApi.as_view(), name="orders"),
]
