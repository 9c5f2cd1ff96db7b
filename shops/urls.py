from django.urls import path

from shops import views

app_name = "shops"

urlpatterns = [
    path("s/<slug:slug>/", views.shop_home, name="shop_home"),
    path("s/<slug:slug>/p/<int:product_id>/", views.product_detail, name="product_detail"),
    path("s/<slug:slug>/cart/", views.cart_view, name="cart"),
    path("s/<slug:slug>/checkout/", views.checkout, name="checkout"),
    path("orders/lookup/", views.order_lookup, name="order_lookup"),
    path("orders/by-phone/", views.orders_by_phone, name="orders_by_phone"),
    path("orders/by-phone/list/", views.orders_by_phone_list, name="orders_by_phone_list"),
    path("orders/<str:number>/", views.order_detail, name="order_detail"),
    path("orders/<str:number>/pay/", views.order_pay, name="order_pay"),
    path("orders/<str:number>/cancel/", views.order_cancel_by_buyer, name="order_cancel"),
    path("orders/<str:number>/paying/", views.order_paying, name="order_paying"),
    path("orders/<str:number>/state/", views.order_state, name="order_state"),
    path("wechat/oauth/return/", views.wechat_oauth_return, name="wechat_oauth_return"),
    path("pay/sandbox/<str:reference>/", views.sandbox_pay, name="sandbox_pay"),
    path("payments/webhook/<str:provider>/", views.payment_webhook, name="payment_webhook"),
]
