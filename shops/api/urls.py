"""REST API v1 URLs of the shops app, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from shops.api import views

app_name = "shops-api"
urlpatterns = [
    path("shop/", views.MyShopApi.as_view(), name="shop"),
    path("shop/listings/", views.MyShopListingsApi.as_view(), name="shop-listings"),
    path("shop/listings/<int:listing_id>/", views.MyShopListingDetailApi.as_view(), name="shop-listing"),
    path("catalogue/", views.CatalogueListApi.as_view(), name="catalogue"),
    path("catalogue/categories/", views.CategoryListApi.as_view(), name="catalogue-categories"),
    path("public/shops/<slug:slug>/", views.PublicShopDetailApi.as_view(), name="public-shop"),
    path("public/shops/<slug:slug>/products/", views.PublicShopProductListApi.as_view(), name="public-shop-products"),
    path(
        "public/shops/<slug:slug>/products/<int:product_id>/",
        views.PublicShopProductDetailApi.as_view(),
        name="public-shop-product",
    ),
]
