"""The shop owner's pages (included at the site's root by config/urls.py)."""

from django.urls import path, re_path

from members.decorators import suspended_refused
from members.views import (
    account,
    earnings,
    identity,
    join,
    leaderboard,
    links,
    notifications,
    orders,
    overview,
    payouts,
    rules,
    sharing,
    shop,
    webhooks,
)

app_name = "members"

# The dashboard, link deactivation and QR views look the member up themselves (not through member_required), so
# a suspended member is refused here; the other member pages refuse one in member_required.
urlpatterns = [
    # The commission rules, public (no login): in force, scheduled and every earlier version (docs/compliance.md).
    path("rules/", rules.rules, name="rules"),
    path("rules/v/<int:plan_version>-<int:policy_version>/", rules.rules_version, name="rules_version"),
    path("join/", join.join, name="join"),
    path("join/phone/", join.join_phone, name="join_phone"),
    path("join/wechat/", join.join_wechat, name="join_wechat"),
    path("join/<str:invite_code>/", join.join, name="join_with_code"),
    path("join/<str:invite_code>/phone/", join.join_phone, name="join_phone_with_code"),
    path("join/<str:invite_code>/wechat/", join.join_wechat, name="join_wechat_with_code"),
    path("dashboard/", suspended_refused(overview.dashboard), name="dashboard"),
    path("dashboard/team/", overview.team, name="team"),
    path("dashboard/team/leaderboard/", leaderboard.leaderboard, name="leaderboard"),
    path("dashboard/team/leaderboard/name/", leaderboard.leaderboard_name, name="leaderboard_name"),
    path("dashboard/shop/", shop.my_shop, name="my_shop"),
    path("dashboard/shop/address/", shop.my_shop_address_check, name="my_shop_address_check"),
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
    path("dashboard/orders/", orders.orders, name="orders"),
    path("dashboard/orders/<str:number>/", orders.order_detail, name="order_detail"),
    path("dashboard/share/products/<int:product_id>/", sharing.share_product, name="share_product"),
    path("dashboard/share/shop/", sharing.share_shop, name="share_shop"),
    path("dashboard/share/invite/", sharing.share_invite, name="share_invite"),
    path("dashboard/share/invite/poster/", sharing.invite_poster_page, name="invite_poster_page"),
    path("dashboard/share/invite/poster.png", sharing.invite_poster, name="invite_poster"),
    path("dashboard/share/links/<int:link_id>/poster/", sharing.link_poster_page, name="link_poster_page"),
    path("dashboard/share/links/<int:link_id>/poster.png", sharing.link_poster, name="link_poster"),
    path("dashboard/commissions/", earnings.commission_entries, name="commission_entries"),
    path("dashboard/commissions/<int:entry_id>/", earnings.commission_entry_detail, name="commission_entry_detail"),
    path("dashboard/notifications/", notifications.inbox, name="notifications"),
    path("dashboard/notifications/read/", notifications.mark_all_read, name="notifications_read_all"),
    path("dashboard/notifications/<int:notification_id>/read/", notifications.mark_read, name="notification_read"),
    path("dashboard/notifications/settings/", notifications.notification_settings, name="notification_settings"),
    path("dashboard/identity/", identity.identity_page, name="identity"),
    path("dashboard/identity/check/", identity.identity_check_again, name="identity_check_again"),
    path("dashboard/identity/business/", identity.identity_business, name="identity_business"),
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
    path("dashboard/payouts/income/", payouts.income_statement, name="income_statement"),
    path("dashboard/payouts/income/<int:year>.csv", payouts.income_statement_csv, name="income_statement_csv"),
    path("dashboard/payouts/income/<int:year>.pdf", payouts.income_statement_pdf_view, name="income_statement_pdf"),
    path(
        "dashboard/payouts/withdrawals/<int:withdrawal_id>/invoice/",
        payouts.withdrawal_invoice,
        name="withdrawal_invoice",
    ),
    path(
        "dashboard/payouts/withdrawals/<int:withdrawal_id>/invoice/<int:invoice_id>/file/",
        payouts.withdrawal_invoice_file,
        name="withdrawal_invoice_file",
    ),
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
    path("dashboard/account/", account.account, name="account"),
    path("dashboard/account/export/", account.data_export, name="data_export"),
    path("dashboard/account/shop/close/", account.shop_close, name="shop_close"),
    path("dashboard/account/close/", account.account_close, name="account_close"),
    path("dashboard/webhooks/", webhooks.endpoints, name="webhooks"),
    path("dashboard/webhooks/<int:endpoint_id>/", webhooks.endpoint_detail, name="webhook_endpoint"),
    path("dashboard/webhooks/<int:endpoint_id>/rotate/", webhooks.endpoint_rotate, name="webhook_rotate"),
    path("dashboard/webhooks/<int:endpoint_id>/toggle/", webhooks.endpoint_toggle, name="webhook_toggle"),
    path("dashboard/webhooks/<int:endpoint_id>/delete/", webhooks.endpoint_remove, name="webhook_delete"),
    path("dashboard/webhooks/deliveries/<int:delivery_id>/", webhooks.delivery_detail, name="webhook_delivery"),
    path(
        "dashboard/webhooks/deliveries/<int:delivery_id>/replay/",
        webhooks.delivery_replay_view,
        name="webhook_replay",
    ),
]
