"""REST API v1 for the signed-in member: who they are."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_responses
from members.api.permissions import IsMemberOrSuspendedReadOnly


class MeApi(APIView):
    """The signed-in member: their account and their place in the programme (`status` says if suspended)."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="The member's id.")
        email = serializers.EmailField(source="user.email", allow_null=True)
        first_name = serializers.CharField(source="user.first_name")
        display_name = serializers.CharField()
        invite_code = serializers.CharField()
        status = serializers.CharField()
        joined_at = serializers.DateTimeField()
        shop_slug = serializers.SerializerMethodField()

        def get_shop_slug(self, member) -> str | None:
            shop = getattr(member, "shop", None)
            return shop.slug if shop is not None else None

    @extend_schema(operation_id="me_retrieve", responses={200: OutputSerializer, **error_responses(401, 403, 429)})
    def get(self, request):
        return Response(self.OutputSerializer(request.member).data)
