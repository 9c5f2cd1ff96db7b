from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from accounts.views import LoginView, PasswordResetView, login_code, wechat_login
from accounts.wechat_login import wechat_login_callback
from config.health import healthz, readyz
from config.views import favicon
from core.admin_tools import admin_moved_model_urls
from core.ratelimit import rate_limit
from shops.views import share_link_redirect
from staff.styleguide import styleguide

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("l/<str:code>", share_link_redirect, name="share_link"),
    path("favicon.ico", favicon, name="favicon"),
    # Health for load balancers and orchestrators (config/health.py): alive; ready to serve (database, cache,
    # broker, migrations)
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("styleguide/", styleguide, name="styleguide"),  # staff only: every component of the design system
    # settings.ADMIN_URL (default "admin/"): nothing else may assume where admin is; use reverse("admin:…").
    path(settings.ADMIN_URL, include("staff.urls")),  # back-office pages: before the admin's own catch-all
    # Share links, their click records and external listings moved to the shops app (issue #20): their admin
    # pages' old addresses redirect to the new ones.
    path(
        settings.ADMIN_URL,
        include(
            admin_moved_model_urls(
                {
                    "referrals:shops": ("sharelink", "sharelinkdailystat", "clickflush"),
                    "networks:shops": ("externallisting",),
                }
            )
        ),
    ),
    path(settings.ADMIN_URL, admin.site.urls),
    path("login/", LoginView.as_view(), name="login"),
    path("login/code/", login_code, name="login_code"),
    # Logging in with WeChat (django-allauth's weixin provider): the names are the ones allauth reverses.
    path("login/wechat/", wechat_login, name="weixin_login"),
    path("login/wechat/callback/", wechat_login_callback, name="weixin_callback"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Each reset sends a mail: limited per address, so the form cannot be used to flood someone's inbox.
    path(
        "password/reset/",
        rate_limit("password_reset", "RATE_LIMIT_PASSWORD_RESET")(PasswordResetView.as_view()),
        name="password_reset",
    ),
    path("password/reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("account/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("config.api_urls")),
    path("", include("members.urls")),
    path("", include("shops.urls")),
    path("", include("payouts.urls")),
]

handler400 = "config.views.bad_request"
handler404 = "config.views.not_found"

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
