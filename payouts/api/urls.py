"""REST API v1 URLs of the payouts app, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from payouts.api import views

app_name = "payouts-api"
urlpatterns = [
    path("payouts/balance/", views.PayoutBalanceApi.as_view(), name="balance"),
    path("payouts/statement/", views.PayoutStatementApi.as_view(), name="statement"),
    path("payouts/account/", views.PayoutAccountApi.as_view(), name="account"),
    path("payouts/withdrawals/", views.WithdrawalsListApi.as_view(), name="withdrawals"),
    path("payouts/withdrawals/create/", views.WithdrawalCreateApi.as_view(), name="withdrawal_create"),
    path(
        "payouts/withdrawals/<int:withdrawal_id>/cancel/", views.WithdrawalCancelApi.as_view(), name="withdrawal_cancel"
    ),
]
