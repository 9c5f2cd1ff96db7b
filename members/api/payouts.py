"""REST API v1 for the signed-in member: balance, statement, payout account and withdrawals.

Everything is looked up through `request.member`, so another member's withdrawal is a 404. The account's number is
never sent back: reads show it masked, as the HTML pages do. The rules (minimum, balance, open requests, account
required) are the services'; their refusals come back as 400 in the one error shape.
"""

from dataclasses import asdict

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import money_field, service_error
from members.api.permissions import IsMember, IsMemberOrSuspendedReadOnly
from members.api.serializers import BalanceSerializer
from members.forms import METHOD_IDENTIFIER
from payouts.models import PayoutAccount, Withdrawal, mask
from payouts.selectors import (
    member_balance,
    member_payout_account,
    member_statement,
    member_withdrawal,
    member_withdrawals,
)
from payouts.services import PayoutError, payout_account_save, withdrawal_cancel, withdrawal_request

# --- Balance and statement ------------------------------------------------------------------------------


class PayoutBalanceApi(APIView):
    """What I can withdraw now, and how it is made up (derived from the ledger and my withdrawals)."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    class OutputSerializer(BalanceSerializer):
        minimum_withdrawal = money_field()

        class Meta:
            ref_name = "PayoutBalance"

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        balance = member_balance(request.member)
        data = {
            **asdict(balance),
            "withdrawable": balance.withdrawable,
            "minimum_withdrawal": settings.WITHDRAWAL_MINIMUM,
        }
        return Response(self.OutputSerializer(data).data)


class PayoutStatementApi(generics.ListAPIView):
    """Every credit and debit of my withdrawable balance, oldest first, with the running balance."""

    permission_classes = [IsMemberOrSuspendedReadOnly]
    filter_backends: list = []

    class OutputSerializer(serializers.Serializer):
        at = serializers.DateTimeField(read_only=True)
        description = serializers.CharField(read_only=True)
        amount = money_field()
        balance = money_field()

        class Meta:
            ref_name = "StatementLine"

    serializer_class = OutputSerializer

    def get_queryset(self):
        return member_statement(self.request.member)


# --- Payout account -------------------------------------------------------------------------------------


class PayoutAccountOutputSerializer(serializers.Serializer):
    method = serializers.CharField(read_only=True)
    holder_name = serializers.CharField(read_only=True)
    bank_name = serializers.CharField(read_only=True)
    bank_branch = serializers.CharField(read_only=True)
    masked_identifier = serializers.CharField(
        read_only=True, help_text=gettext_lazy("The card number, Alipay account or WeChat ID, masked.")
    )
    updated_at = serializers.DateTimeField(read_only=True)

    class Meta:
        ref_name = "PayoutAccount"


class PayoutAccountApi(APIView):
    """My payout account: read it (masked), or create / replace it."""

    permission_classes = [IsMemberOrSuspendedReadOnly]

    class InputSerializer(serializers.Serializer):
        method = serializers.ChoiceField(choices=PayoutAccount.Method.choices)
        holder_name = serializers.CharField(max_length=60, allow_blank=True)
        bank_name = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
        bank_branch = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
        account_number = serializers.CharField(
            max_length=40,
            required=False,
            allow_blank=True,
            default="",
            help_text=gettext_lazy("Empty keeps the number on file (if the method stays the same)."),
        )
        alipay_account = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        wechat_id = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "PayoutAccountInput"

    @extend_schema(responses={200: PayoutAccountOutputSerializer})
    def get(self, request):
        account = member_payout_account(request.member)
        if account is None:
            raise NotFound(_("No payout account yet."))
        return Response(PayoutAccountOutputSerializer(account).data)

    @extend_schema(request=InputSerializer, responses={200: PayoutAccountOutputSerializer})
    def put(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        arguments = dict(data.validated_data)
        current = member_payout_account(request.member)
        # As the HTML form: the saved identifier is never sent out, so an empty one keeps it.
        if current is not None and arguments["method"] == current.method:
            kept = METHOD_IDENTIFIER[current.method]
            if not arguments.get(kept, "").strip():
                arguments[kept] = getattr(current, kept)
        try:
            account = payout_account_save(member=request.member, **arguments)
        except PayoutError as error:
            raise service_error(error) from error
        return Response(PayoutAccountOutputSerializer(account).data)


# --- Withdrawals ----------------------------------------------------------------------------------------


class WithdrawalOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    amount = money_field()
    # Income tax withheld when it was sent (docs/tax.md) and what reached the member; 0.00 and the amount until then.
    tax_withheld = money_field()
    net_amount = money_field()
    status = serializers.CharField(read_only=True)
    method = serializers.SerializerMethodField()
    masked_account = serializers.SerializerMethodField()
    reason = serializers.CharField(read_only=True)
    requested_at = serializers.DateTimeField(read_only=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    paid_at = serializers.DateTimeField(read_only=True, allow_null=True)
    failed_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        ref_name = "Withdrawal"

    def get_method(self, withdrawal) -> str:
        return (withdrawal.account or {}).get("method", "")

    def get_masked_account(self, withdrawal) -> str:
        """The account paid to, as recorded at request time, masked."""
        snapshot = withdrawal.account or {}
        field = METHOD_IDENTIFIER.get(snapshot.get("method"))
        return mask(snapshot.get(field, "")) if field else ""


class WithdrawalsListApi(generics.ListAPIView):
    """My withdrawals, newest first."""

    permission_classes = [IsMemberOrSuspendedReadOnly]
    filter_backends: list = []
    serializer_class = WithdrawalOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no member
            return Withdrawal.objects.none()
        return member_withdrawals(self.request.member)


class WithdrawalCreateApi(APIView):
    """Ask to withdraw an amount to my payout account. Small requests are approved at once."""

    permission_classes = [IsMember]

    class InputSerializer(serializers.Serializer):
        amount = money_field(read_only=False)

        class Meta:
            ref_name = "WithdrawalCreateInput"

    @extend_schema(request=InputSerializer, responses={201: WithdrawalOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            withdrawal = withdrawal_request(member=request.member, amount=data.validated_data["amount"])
        except PayoutError as error:
            raise service_error(error) from error
        return Response(WithdrawalOutputSerializer(withdrawal).data, status=status.HTTP_201_CREATED)


class WithdrawalCancelApi(APIView):
    """Take back one of my requests that is not approved yet; the money returns to my balance."""

    permission_classes = [IsMember]

    @extend_schema(request=None, responses={200: WithdrawalOutputSerializer})
    def post(self, request, withdrawal_id: int):
        withdrawal = member_withdrawal(request.member, withdrawal_id)
        if withdrawal is None:
            raise NotFound(_("No such withdrawal."))
        try:
            withdrawal = withdrawal_cancel(withdrawal=withdrawal, member=request.member)
        except PayoutError as error:
            raise service_error(error) from error
        return Response(WithdrawalOutputSerializer(withdrawal).data)
