"""REST API v1 URLs of the shops app (public storefront reads, and fulfilment for staff), included under /api/v1/ by
config/api_urls.py."""

from django.urls import path

from shops.api import fulfilment, views

app_name = "shops-api"
urlpatterns = [
    path("public/shops/<slug:slug>/", views.PublicShopDetailApi.as_view(), name="public-shop"),
    path("public/shops/<slug:slug>/products/", views.PublicShopProductListApi.as_view(), name="public-shop-products"),
    path(
        "public/shops/<slug:slug>/products/<int:product_id>/",
        views.PublicShopProductDetailApi.as_view(),
        name="public-shop-product",
    ),
    path(
        "fulfilment/orders/<str:number>/shipment/",
        fulfilment.OrderShipmentApi.as_view(),
        name="fulfilment-order-shipment",
    ),
]
