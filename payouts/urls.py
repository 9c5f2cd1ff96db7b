from django.urls import path

from payouts import views

app_name = "payouts"

urlpatterns = [
    path("dashboard/payouts/", views.overview, name="overview"),
    path("dashboard/payouts/account/", views.account, name="account"),
    path("dashboard/payouts/statement/", views.statement, name="statement"),
    path("dashboard/payouts/statement.csv", views.statement_csv, name="statement_csv"),
    path(
        "dashboard/payouts/withdrawals/<int:withdrawal_id>/cancel/",
        views.withdrawal_cancel_view,
        name="withdrawal_cancel",
    ),
]
