"""REST API v1 for the signed-in member: their commission entries, each entry's explanation, their earnings.

The selectors filter on the beneficiary, so another member's entry is a 404, exactly like one that does not exist.
"""

import django_filters
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions.models import CommissionEntry
from commissions.selectors import (
    MEMBER_LEVELS,
    commission_entry_before_cap,
    commission_entry_cap_limit,
    commission_entry_history,
    member_commission_entries,
    member_commission_entry,
    member_commission_entry_related,
)
from core.api import money_field, rate_field
from members.api.permissions import IsMemberOrSuspendedReadOnly
from members.api.serializers import BalanceSerializer
from payouts.selectors import member_balance

Entry = CommissionEntry


class CommissionEntryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=CommissionEntry.Status.choices)
    level = django_filters.TypedChoiceFilter(
        choices=[(level, str(level)) for level in MEMBER_LEVELS], coerce=int, label=gettext_lazy("Level (1 = sharer).")
    )
    kind = django_filters.ChoiceFilter(
        choices=[
            (value, label) for value, label in CommissionEntry.Kind.choices if value != CommissionEntry.Kind.PLATFORM
        ]
    )

    class Meta:
        model = CommissionEntry
        fields = ["status", "level", "kind"]


SOURCE_SHOP, SOURCE_NETWORK = "shop", "network"


class EntrySourceSerializer(serializers.Serializer):
    """Where the sale of an entry happened: one of our shops (`order_number` set) or an external affiliate network
    (`network` and `external_order_id` set). The fields of the other source are null."""

    source = serializers.SerializerMethodField(
        help_text=gettext_lazy('"shop": a sale in one of our shops; "network": a sale an external network reported.')
    )
    order_number = serializers.CharField(
        source="order.number", read_only=True, allow_null=True, help_text=gettext_lazy("Null for a network sale.")
    )
    network = serializers.CharField(
        source="external_line.network.code",
        read_only=True,
        allow_null=True,
        help_text=gettext_lazy("The network's code (null for a sale in our shops)."),
    )
    network_name = serializers.CharField(source="external_line.network.name", read_only=True, allow_null=True)
    external_order_id = serializers.CharField(
        source="external_line.external_order_id",
        read_only=True,
        allow_null=True,
        help_text=gettext_lazy("The network's order id (null for a sale in our shops)."),
    )

    @extend_schema_field(serializers.ChoiceField(choices=[SOURCE_SHOP, SOURCE_NETWORK]))
    def get_source(self, entry) -> str:
        return SOURCE_NETWORK if entry.external_line_id is not None else SOURCE_SHOP

    @staticmethod
    def line_title(entry) -> str:
        line = entry.external_line if entry.external_line_id is not None else entry.order_line
        return line.title


def _under_review_field():
    return serializers.BooleanField(
        source="is_under_review",
        read_only=True,
        help_text=gettext_lazy(
            "True while this pending commission is under review: we check some orders before their commission is "
            "paid. It stays pending until the check is done."
        ),
    )


class CommissionEntriesListApi(generics.ListAPIView):
    """My commission entries (commissions, reversals, clawbacks, adjustments), newest first, from our shops' sales
    and from sales reported by external affiliate networks."""

    permission_classes = [IsMemberOrSuspendedReadOnly]
    filterset_class = CommissionEntryFilter

    class OutputSerializer(EntrySourceSerializer):
        id = serializers.IntegerField(read_only=True)
        line_title = serializers.SerializerMethodField()
        level = serializers.IntegerField(read_only=True)
        kind = serializers.CharField(read_only=True)
        amount = money_field()
        status = serializers.CharField(read_only=True)
        under_review = _under_review_field()
        capped_by = serializers.CharField(read_only=True)
        created_at = serializers.DateTimeField(read_only=True)

        class Meta:
            ref_name = "CommissionEntry"

        def get_line_title(self, entry) -> str:
            return self.line_title(entry)

    serializer_class = OutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no member
            return CommissionEntry.objects.none()
        return member_commission_entries(self.request.member)


class CommissionEntryDetailApi(APIView):
    """One of my entries and why it is what it is: order line, pool, rate, level, plan and policy, cap, history."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    class OutputSerializer(EntrySourceSerializer):
        class LineSerializer(serializers.Serializer):
            title = serializers.CharField()
            quantity = serializers.IntegerField()
            net_amount = money_field()
            commission_rate = rate_field(help_text=gettext_lazy("The line's commission pool as a fraction."))

            class Meta:
                ref_name = "CommissionEntryLine"

        class StepSerializer(serializers.Serializer):
            label = serializers.CharField()
            at = serializers.DateTimeField()

            class Meta:
                ref_name = "CommissionEntryStep"

        class RelatedSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            kind = serializers.CharField()
            amount = money_field()
            status = serializers.CharField()
            created_at = serializers.DateTimeField()
            refunded_line_amount = money_field(allow_null=True)

            class Meta:
                ref_name = "CommissionEntryRelated"

        class ExternalLineSerializer(serializers.Serializer):
            network = serializers.CharField(source="network.code")
            network_name = serializers.CharField(source="network.name")
            external_order_id = serializers.CharField()
            line_id = serializers.CharField()
            title = serializers.CharField()
            quantity = serializers.IntegerField()
            paid_amount = money_field(help_text=gettext_lazy("What the buyer paid (the base of the payout ratio)."))
            commission = money_field(help_text=gettext_lazy("The commission the network reports now (the pool)."))
            status = serializers.CharField(help_text=gettext_lazy("paid, confirmed, settled or invalid."))
            paid_at = serializers.DateTimeField()

            class Meta:
                ref_name = "CommissionEntryExternalLine"

        id = serializers.IntegerField()
        kind = serializers.CharField()
        status = serializers.CharField()
        under_review = _under_review_field()
        level = serializers.IntegerField()
        line = LineSerializer(source="order_line", allow_null=True, help_text=gettext_lazy("Null for a network sale."))
        external_line = ExternalLineSerializer(
            allow_null=True, help_text=gettext_lazy("The line the network reported (null for a sale in our shops).")
        )
        base = money_field(help_text=gettext_lazy("The line's commission pool."))
        rate = rate_field(help_text=gettext_lazy("The plan rate of this level, as a fraction of the pool."))
        before_cap = money_field(help_text=gettext_lazy("Pool × rate, rounded down, before any cap."))
        amount = money_field()
        capped_by = serializers.CharField(help_text=gettext_lazy("The cap that bound, if any (empty otherwise)."))
        cap_limit = rate_field(allow_null=True)
        plan_version = serializers.IntegerField(source="plan.version", allow_null=True)
        policy_version = serializers.IntegerField(source="policy.version", allow_null=True)
        refunded_line_amount = money_field(allow_null=True)
        note = serializers.CharField()
        created_at = serializers.DateTimeField()
        released_at = serializers.DateTimeField(allow_null=True)
        paid_at = serializers.DateTimeField(allow_null=True)
        reversed_at = serializers.DateTimeField(allow_null=True)
        history = StepSerializer(many=True)
        related = RelatedSerializer(many=True)

        class Meta:
            ref_name = "CommissionEntryDetail"

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, entry_id: int):
        entry = member_commission_entry(request.member, entry_id)
        if entry is None:
            raise NotFound(_("No such commission entry."))
        entry.cap_limit = commission_entry_cap_limit(entry)
        entry.before_cap = commission_entry_before_cap(entry)
        entry.history = commission_entry_history(entry)
        entry.related = member_commission_entry_related(entry)
        return Response(self.OutputSerializer(entry).data)


class CommissionSummaryApi(APIView):
    """My earnings by where they stand: the same balance as `payouts/balance/` (issue #19: one read model), plus
    `paid`, kept for clients written before it, which is `paid_out`."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    class OutputSerializer(BalanceSerializer):
        paid = money_field(source="paid_out", help_text=gettext_lazy("The same as paid_out (kept for older clients)."))

        class Meta:
            ref_name = "CommissionSummary"

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(member_balance(request.member)).data)
