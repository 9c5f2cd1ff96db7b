"""REST API v1 for the signed-in member: their sponsor and team, level by level, with this month's sales."""

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiError, money_field
from members.api.permissions import IsMember
from members.links import invite_url
from members.selectors import member_team_level_sales, month_bounds, team_levels_in_force
from referrals.selectors import member_team_level_counts


class MemberTeamApi(APIView):
    """My sponsor, invite link and how many members each level of my team has (the levels the policy pays)."""

    permission_classes = [IsMember]

    class OutputSerializer(serializers.Serializer):
        class SponsorSerializer(serializers.Serializer):
            display_name = serializers.CharField()
            joined_at = serializers.DateTimeField()

            class Meta:
                ref_name = "TeamSponsor"

        class LevelSerializer(serializers.Serializer):
            level = serializers.IntegerField()
            members = serializers.IntegerField()

            class Meta:
                ref_name = "TeamLevelCount"

        sponsor = SponsorSerializer(allow_null=True)
        invite_code = serializers.CharField()
        invite_url = serializers.URLField()
        levels_in_force = serializers.IntegerField()
        levels = LevelSerializer(many=True)

        class Meta:
            ref_name = "Team"

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        member = request.member
        levels = team_levels_in_force()
        counts = member_team_level_counts(member, levels)
        sponsor = member.parent
        data = {
            "sponsor": (
                {"display_name": sponsor.display_name, "joined_at": sponsor.joined_at} if sponsor is not None else None
            ),
            "invite_code": member.invite_code,
            "invite_url": invite_url(member),
            "levels_in_force": levels,
            "levels": [{"level": level, "members": n} for level, n in sorted(counts.items())],
        }
        return Response(self.OutputSerializer(data).data)


class MemberTeamLevelApi(generics.ListAPIView):
    """The members exactly `level` links below me, in tree order, with their sales this month (no contact details)."""

    permission_classes = [IsMember]
    filter_backends: list = []

    class InputSerializer(serializers.Serializer):
        level = serializers.IntegerField(min_value=1)

        class Meta:
            ref_name = "TeamLevelQuery"

    class OutputSerializer(serializers.Serializer):
        display_name = serializers.CharField(read_only=True)
        status = serializers.CharField(read_only=True)
        joined_at = serializers.DateTimeField(read_only=True)
        sales_this_month = money_field(source="sales")

        class Meta:
            ref_name = "TeamMember"

    serializer_class = OutputSerializer

    def get_queryset(self):
        query = self.InputSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        level = query.validated_data["level"]
        levels = team_levels_in_force()
        if level > levels:
            message = _("Your team shows levels 1 to %(levels)d.") % {"levels": levels}
            raise ApiError(message, code="invalid", fields={"level": [message]})
        since, until = month_bounds(timezone.localdate())
        return member_team_level_sales(self.request.member, level, since, until)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "level",
                OpenApiTypes.INT,
                required=True,
                description=gettext_lazy("1 = my direct invitees; at most the levels in force (see /team/)."),
            )
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
