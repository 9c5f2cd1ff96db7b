"""REST API v1 for the signed-in member: their commission entries, each entry's explanation, their earnings.

The selectors filter on the beneficiary, so another member's entry is a 404, exactly like one that does not exist.
"""

import django_filters
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions.calculations import CAP_MAX_PAYOUT_RATIO, CAP_MAX_TOTAL_RATE
from commissions.models import CommissionEntry
from commissions.selectors import (
    MEMBER_LEVELS,
    commission_entry_before_cap,
    commission_entry_history,
    member_commission_entries,
    member_commission_entry,
    member_commission_entry_related,
    member_commission_summary,
)
from config.api import IsMemberOrSuspendedReadOnly

Entry = CommissionEntry


def money_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True, **kwargs)


def rate_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True, **kwargs)


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


class CommissionEntriesListApi(generics.ListAPIView):
    """My commission entries (commissions, reversals, clawbacks), newest first."""

    permission_classes = [IsMemberOrSuspendedReadOnly]
    filterset_class = CommissionEntryFilter

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(read_only=True)
        order_number = serializers.CharField(source="order.number", read_only=True)
        line_title = serializers.CharField(source="order_line.title", read_only=True)
        level = serializers.IntegerField(read_only=True)
        kind = serializers.CharField(read_only=True)
        amount = money_field()
        status = serializers.CharField(read_only=True)
        capped_by = serializers.CharField(read_only=True)
        created_at = serializers.DateTimeField(read_only=True)

        class Meta:
            ref_name = "CommissionEntry"

    serializer_class = OutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no member
            return CommissionEntry.objects.none()
        return member_commission_entries(self.request.member)


class CommissionEntryDetailApi(APIView):
    """One of my entries and why it is what it is: order line, pool, rate, level, plan and policy, cap, history."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    class OutputSerializer(serializers.Serializer):
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

        id = serializers.IntegerField()
        kind = serializers.CharField()
        status = serializers.CharField()
        level = serializers.IntegerField()
        order_number = serializers.CharField(source="order.number")
        line = LineSerializer(source="order_line")
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
        policy = entry.policy
        entry.cap_limit = None
        if policy is not None and entry.capped_by == CAP_MAX_TOTAL_RATE:
            entry.cap_limit = policy.max_total_rate
        elif policy is not None and entry.capped_by == CAP_MAX_PAYOUT_RATIO:
            entry.cap_limit = policy.max_payout_ratio
        entry.before_cap = commission_entry_before_cap(entry)
        entry.history = commission_entry_history(entry)
        entry.related = member_commission_entry_related(entry)
        return Response(self.OutputSerializer(entry).data)


class CommissionSummaryApi(APIView):
    """My earnings by where they stand (sums of my ledger entries)."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    class OutputSerializer(serializers.Serializer):
        pending = money_field(help_text=gettext_lazy("On hold until the order can no longer be refunded."))
        available = money_field(help_text=gettext_lazy("Released and not paid out yet; negative after a clawback."))
        paid = money_field(help_text=gettext_lazy("Covered by a payout."))
        clawed_back = money_field(help_text=gettext_lazy("Taken back after release (already in the figures above)."))

        class Meta:
            ref_name = "CommissionSummary"

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(member_commission_summary(request.member)).data)
