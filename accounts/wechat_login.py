"""Logging in with WeChat through django-allauth's WeChat provider (`allauth.socialaccount.providers.weixin`).

WeChat has two ways in, with two different apps (and AppIDs) under one Open Platform account:

- on a desktop browser, the website app's QR code (网站应用, `WECHAT_LOGIN_QR_URL` =
  open.weixin.qq.com/connect/qrconnect, scope snsapi_login): the person scans it with WeChat on their phone;
- inside WeChat's own browser (its User-Agent says MicroMessenger), the official account's web OAuth (公众号网页授权,
  `WECHAT_LOGIN_MP_URL` = open.weixin.qq.com/connect/oauth2/authorize, scope snsapi_userinfo, `#wechat_redirect`).

Both send the browser back to our callback with `code` and `state`; allauth checks the state against the one it kept
in the session (a state from another browser, or used once already, is refused), exchanges the code at
`WECHAT_LOGIN_API_URL`/sns/oauth2/access_token (each code works once, for 5 minutes) and reads
/sns/userinfo. allauth's adapter hard-codes WeChat's API host; the subclass here reads it from settings, so tests
and `make run` use the local fake (shops/payments/fakes/wechat_oauth.py).

An account is bound to the person's unionid when WeChat gives one (the same person in both apps of one Open
Platform account), else to the openid. This binding is only a way to log in: the WeChat payee a member binds for
payouts (payouts, the official account's snsapi_base openid) is kept apart and never changed from here.
"""

import json

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from allauth.socialaccount.providers.weixin.client import WeixinOAuth2Client
from allauth.socialaccount.providers.weixin.views import WeixinOAuth2Adapter
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

PROVIDER_ID = "weixin"
LOGIN_BACKEND = "accounts.backends.EmailOrPhoneBackend"
IN_WECHAT_MARK = "MicroMessenger"


def is_in_wechat(request) -> bool:
    return IN_WECHAT_MARK in request.headers.get("user-agent", "")


def _web_configured() -> bool:
    return bool(settings.WECHAT_LOGIN_WEB_APPID and settings.WECHAT_LOGIN_WEB_SECRET)


def _mp_configured() -> bool:
    return bool(settings.WECHAT_LOGIN_MP_APPID and settings.WECHAT_LOGIN_MP_SECRET)


def wechat_login_available(request) -> bool:
    """Whether "Log in with WeChat" can work in this browser: inside WeChat with the official account configured,
    or anywhere with the website app's QR login configured."""
    return (is_in_wechat(request) and _mp_configured()) or _web_configured()


def _uses_official_account(request) -> bool:
    return is_in_wechat(request) and _mp_configured()


class WeChatClient(WeixinOAuth2Client):
    """allauth's WeChat client; inside WeChat's browser the authorize URL ends in #wechat_redirect, as WeChat's
    documentation asks, and its parameters go in WeChat's documented order."""

    def get_redirect_url(self, authorization_url, scope, extra_params):
        if not _uses_official_account(self.request):
            return super().get_redirect_url(authorization_url, scope, extra_params)
        query = urlencode(
            [
                ("appid", self.consumer_key),
                ("redirect_uri", self.callback_url),
                ("response_type", "code"),
                ("scope", "snsapi_userinfo"),
                ("state", self.state or ""),
            ]
        )
        return f"{authorization_url}?{query}#wechat_redirect"


class WeChatLoginAdapter(WeixinOAuth2Adapter):
    """allauth's WeChat adapter with WeChat's addresses from settings and the app chosen by the browser."""

    client_class = WeChatClient
    access_token_method = "GET"  # noqa: S105 - an HTTP method (WeChat documents GET), not a secret

    @property
    def access_token_url(self):
        return settings.WECHAT_LOGIN_API_URL + "/sns/oauth2/access_token"

    @property
    def profile_url(self):
        return settings.WECHAT_LOGIN_API_URL + "/sns/userinfo"

    @property
    def authorize_url(self):
        return settings.WECHAT_LOGIN_MP_URL if _uses_official_account(self.request) else settings.WECHAT_LOGIN_QR_URL

    def get_client(self, request, app):
        client = super().get_client(request, app)
        if _uses_official_account(request):
            client.consumer_key, client.consumer_secret = (
                settings.WECHAT_LOGIN_MP_APPID,
                settings.WECHAT_LOGIN_MP_SECRET,
            )
        elif _web_configured():
            client.consumer_key = settings.WECHAT_LOGIN_WEB_APPID
            client.consumer_secret = settings.WECHAT_LOGIN_WEB_SECRET
        return client

    def complete_login(self, request, app, token, **kwargs):
        """Who the person is (/sns/userinfo), as allauth's adapter asks, but read as UTF-8 JSON: WeChat sends
        "application/json; encoding=utf-8" with no charset, and allauth's re-decoding of the nickname mangles
        Chinese names. Bound to the unionid when WeChat gives one, else the openid."""
        response = kwargs.get("response") or {}
        params = {"access_token": token.token, "openid": response.get("openid", ""), "lang": "zh_CN"}
        with get_social_adapter().get_requests_session() as session:
            answer = session.get(self.profile_url, params=params)
            answer.raise_for_status()
        try:
            data = json.loads(answer.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise OAuth2Error("WeChat's userinfo is not JSON") from None
        if not isinstance(data, dict) or data.get("errcode") or not data.get("openid"):
            raise OAuth2Error(f"WeChat refused the userinfo ({data.get('errcode') if isinstance(data, dict) else '?'})")
        sociallogin = self.get_provider().sociallogin_from_response(request, data)
        unionid = data.get("unionid") or response.get("unionid")
        if unionid:
            sociallogin.account.uid = unionid  # one person across the QR and the in-WeChat apps
        return sociallogin


def wechat_login_redirect(request, *, process: str = AuthProcess.LOGIN, next_url: str | None = None):
    """Send the browser to WeChat to log in (`process` "login") or to bind WeChat to the signed-in account
    ("connect"); allauth keeps the state, `next_url` and the process in the session for the callback."""
    provider = get_social_adapter(request).get_provider(request, PROVIDER_ID)
    adapter = WeChatLoginAdapter(request)
    client = adapter.get_client(request, provider.app)
    client.state = provider.stash_redirect_state(request, process, next_url, None)
    return HttpResponseRedirect(client.get_redirect_url(adapter.authorize_url, ["snsapi_login"], {}))


_callback = OAuth2CallbackView.adapter_view(WeChatLoginAdapter)


def wechat_login_callback(request):
    """Where WeChat sends the browser back (`code`, `state`): allauth's callback, when WeChat login is configured."""
    if not (_web_configured() or _mp_configured()):
        raise Http404
    return _callback(request)


class AccountAdapter(DefaultAccountAdapter):
    """allauth's account side, for its social logins only (our own pages log in with email, phone or a code)."""

    def login(self, request, user) -> None:
        # allauth would pick the first backend that has get_user, which is the lockout check (it finds no one).
        user.backend = LOGIN_BACKEND
        super().login(request, user)

    def respond_user_inactive(self, request, user):
        # allauth would redirect to its own "account inactive" page, which is not mounted here.
        return render(request, "accounts/wechat_error.html", {"problem": _("This account is inactive.")}, status=403)

    def populate_username(self, request, user) -> None:
        return None  # no username on our User

    def add_message(self, request, level, message_template=None, message_context=None, extra_tags="", message=None):
        # allauth's messages in our words (and our catalogue); the ones not listed say nothing.
        if message is None and message_template is not None:
            text = ALLAUTH_MESSAGES.get(message_template)
            if text:
                messages.add_message(request, level, str(text), extra_tags=extra_tags)
            return
        super().add_message(request, level, message_template, message_context, extra_tags, message)


ALLAUTH_MESSAGES = {
    "socialaccount/messages/account_connected.txt": _("WeChat is bound: you can log in with it now."),
    "socialaccount/messages/account_connected_updated.txt": _("WeChat is bound: you can log in with it now."),
    "socialaccount/messages/account_connected_other.txt": _(
        "This WeChat is already bound to another account here, so it was not bound to this one. Accounts are never "
        "merged on their own: to move it, log in to the other account (with WeChat), unbind WeChat under “Ways to "
        "log in” there, then log in here again and bind it."
    ),
    "socialaccount/messages/account_disconnected.txt": _("WeChat is unbound from your account."),
}
