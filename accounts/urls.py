from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.profile, name="profile"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("logins/", views.logins, name="logins"),
    path("logins/phone/", views.logins_phone, name="logins-phone"),
    path("logins/phone/remove/", views.logins_phone_unbind, name="logins-phone-unbind"),
    path("logins/wechat/bind/", views.logins_wechat_bind, name="logins-wechat-bind"),
    path("logins/wechat/<int:account_id>/unbind/", views.logins_wechat_unbind, name="logins-wechat-unbind"),
]
