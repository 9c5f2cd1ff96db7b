"""REST API v1 URLs for the signed-in member, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from members.api import earnings, links, me, orders, payouts, shop, team, webhooks

app_name = "members-api"
urlpatterns = [
    path("me/", me.MeApi.as_view(), name="me"),
    path("shop/", shop.MyShopApi.as_view(), name="shop"),
    path("shop/listings/", shop.MyShopListingsApi.as_view(), name="shop_listings"),
    path("shop/listings/<int:listing_id>/", shop.MyShopListingDetailApi.as_view(), name="shop_listing"),
    path("catalogue/", shop.CatalogueListApi.as_view(), name="catalogue"),
    path("catalogue/categories/", shop.CategoryListApi.as_view(), name="catalogue_categories"),
    path("links/", links.MemberLinksListApi.as_view(), name="links"),
    path("links/create/", links.MemberLinkCreateApi.as_view(), name="link_create"),
    path("links/<int:link_id>/deactivate/", links.MemberLinkDeactivateApi.as_view(), name="link_deactivate"),
    path("team/", team.MemberTeamApi.as_view(), name="team"),
    path("team/members/", team.MemberTeamLevelApi.as_view(), name="team_members"),
    path("orders/", orders.MemberOrdersListApi.as_view(), name="orders"),
    path("orders/<str:number>/", orders.MemberOrderDetailApi.as_view(), name="order_detail"),
    path("commissions/", earnings.CommissionEntriesListApi.as_view(), name="commission_entries"),
    path("commissions/summary/", earnings.CommissionSummaryApi.as_view(), name="commission_summary"),
    path("commissions/<int:entry_id>/", earnings.CommissionEntryDetailApi.as_view(), name="commission_entry_detail"),
    path("payouts/balance/", payouts.PayoutBalanceApi.as_view(), name="payout_balance"),
    path("payouts/statement/", payouts.PayoutStatementApi.as_view(), name="payout_statement"),
    path("payouts/account/", payouts.PayoutAccountApi.as_view(), name="payout_account"),
    path("payouts/withdrawals/", payouts.WithdrawalsListApi.as_view(), name="withdrawals"),
    path("payouts/withdrawals/create/", payouts.WithdrawalCreateApi.as_view(), name="withdrawal_create"),
    path(
        "payouts/withdrawals/<int:withdrawal_id>/cancel/",
        payouts.WithdrawalCancelApi.as_view(),
        name="withdrawal_cancel",
    ),
    path("webhooks/", webhooks.WebhookEndpointsListApi.as_view(), name="webhooks"),
    path("webhooks/create/", webhooks.WebhookEndpointCreateApi.as_view(), name="webhook_create"),
    path("webhooks/<int:endpoint_id>/", webhooks.WebhookEndpointDetailApi.as_view(), name="webhook"),
    path(
        "webhooks/<int:endpoint_id>/rotate-secret/", webhooks.WebhookEndpointRotateApi.as_view(), name="webhook_rotate"
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/", webhooks.WebhookDeliveriesListApi.as_view(), name="webhook_deliveries"
    ),
    path(
        "webhooks/deliveries/<int:delivery_id>/replay/",
        webhooks.WebhookDeliveryReplayApi.as_view(),
        name="webhook_replay",
    ),
]
