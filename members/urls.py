"""The shop owner's pages (included at the site's root by config/urls.py)."""

from django.urls import path, re_path

from members.decorators import suspended_refused
from members.views import earnings, join, links, notifications, overview, payouts, shop

app_name = "members"

# The dashboard, link deactivation and QR views look the member up themselves (not through member_required), so
# a suspended member is refused here; the other member pages refuse one in member_required.
urlpatterns = [
    path("join/", join.join, name="join"),
    path("join/<str:invite_code>/", join.join, name="join_with_code"),
    path("dashboard/", suspended_refused(overview.dashboard), name="dashboard"),
    path("dashboard/team/", overview.team, name="team"),
    path("dashboard/shop/", shop.my_shop, name="my_shop"),
    path("dashboard/shop/products/", shop.my_shop_products, name="my_shop_products"),
    path("dashboard/shop/products/add/", shop.my_shop_catalogue, name="my_shop_catalogue"),
    path("dashboard/shop/products/networks/", shop.my_shop_networks, name="my_shop_networks"),
    path("dashboard/links/", links.links, name="links"),
    path(
        "dashboard/links/<int:link_id>/deactivate/",
        suspended_refused(links.link_deactivate),
        name="link_deactivate",
    ),
    re_path(
        r"^dashboard/links/(?P<link_id>[0-9]+)/qr\.(?P<fmt>svg|png)$", suspended_refused(links.link_qr), name="link_qr"
    ),
    re_path(r"^dashboard/invite/qr\.(?P<fmt>svg|png)$", suspended_refused(links.invite_qr), name="invite_qr"),
    path("dashboard/commissions/", earnings.commission_entries, name="commission_entries"),
    path("dashboard/commissions/<int:entry_id>/", earnings.commission_entry_detail, name="commission_entry_detail"),
    path("dashboard/notifications/", notifications.inbox, name="notifications"),
    path("dashboard/notifications/read/", notifications.mark_all_read, name="notifications_read_all"),
    path("dashboard/notifications/<int:notification_id>/read/", notifications.mark_read, name="notification_read"),
    path("dashboard/notifications/settings/", notifications.notification_settings, name="notification_settings"),
    path("dashboard/payouts/", payouts.overview, name="payouts"),
    path("dashboard/payouts/account/", payouts.account, name="payout_account"),
    path("dashboard/payouts/account/wechat/", payouts.account_wechat_bind, name="payout_account_wechat"),
    path(
        "dashboard/payouts/account/wechat/return/",
        payouts.account_wechat_return,
        name="payout_account_wechat_return",
    ),
    path("dashboard/payouts/statement/", payouts.statement, name="payout_statement"),
    path("dashboard/payouts/statement.csv", payouts.statement_csv, name="payout_statement_csv"),
    path(
        "dashboard/payouts/withdrawals/<int:withdrawal_id>/cancel/",
        payouts.withdrawal_cancel_view,
        name="withdrawal_cancel",
    ),
    path(
        "dashboard/payouts/withdrawals/<int:withdrawal_id>/transfer/",
        payouts.withdrawal_transfer_refresh,
        name="withdrawal_transfer_refresh",
    ),
]
