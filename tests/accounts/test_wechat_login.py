"""Logging in, signing up and binding with WeChat (django-allauth's weixin provider, accounts.wechat_login) end to end:
a browser played by `requests` against the live server and the local fake of WeChat's OAuth
(shops/payments/fakes/wechat_oauth.py) on its own loopback port. No mocks: allauth's state in the session, the code
exchange at /sns/oauth2/access_token and /sns/userinfo all go over HTTP."""

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from config.settings import env_secret
from payouts.models import PayoutAccount
from referrals.models import Member
from shops.management.commands.payment_gateways_fake import write_settings
from shops.payments.fakes import PaymentGatewaysFake
from shops.payments.fakes.common import LoopbackServer, Response
from shops.payments.fakes.wechat_oauth import WeChatOAuthFake
from tests.factories import PASSWORD, MemberFactory

MP_APPID = "wx1111111111111111"  # the official account (inside WeChat's browser)
WEB_APPID = "wx2222222222222222"  # the Open Platform website app (QR login on a desktop)
IN_WECHAT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0"
    " Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240501 MicroMessenger/8.0.50.2701"
)
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wechat(settings, live_server):
    """WeChat's OAuth, faked on a loopback port: an official account and a website app of one Open Platform account;
    the WECHAT_LOGIN_* settings point at it."""
    fake = WeChatOAuthFake(appid=MP_APPID)
    web_secret = fake.add_app(appid=WEB_APPID, kind="web")
    fake.open_platform = True
    server = LoopbackServer("127.0.0.1", 0, lambda request: fake.handle(request) or Response(404, b"not found"))
    server.start()
    settings.WECHAT_LOGIN_WEB_APPID, settings.WECHAT_LOGIN_WEB_SECRET = WEB_APPID, web_secret
    settings.WECHAT_LOGIN_MP_APPID, settings.WECHAT_LOGIN_MP_SECRET = MP_APPID, fake.secret
    settings.WECHAT_LOGIN_QR_URL = server.url + "/connect/qrconnect"
    settings.WECHAT_LOGIN_MP_URL = server.url + "/connect/oauth2/authorize"
    settings.WECHAT_LOGIN_API_URL = server.url
    settings.SOCIALACCOUNT_PROVIDERS = {"weixin": {"APPS": [{"client_id": WEB_APPID, "secret": web_secret}]}}
    yield fake
    server.stop()


class Browser:
    """One browser: its cookies, its User-Agent; redirects are followed by hand so each hop can be checked."""

    def __init__(self, base_url: str, user_agent: str = DESKTOP):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent

    def get(self, url: str, **kwargs) -> requests.Response:
        url = url if url.startswith("http") else self.base_url + url
        return self.session.get(url, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path: str, data: dict | None = None, *, page: str = "/login/") -> requests.Response:
        """POST a form of `page` (for its CSRF cookie and token) to `path`."""
        form_page = self.get(page)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_page.text).group(1)
        return self.session.post(
            self.base_url + path,
            data={"csrfmiddlewaretoken": token, **(data or {})},
            headers={"Referer": self.base_url + page},
            allow_redirects=False,
            timeout=10,
        )

    def to_wechat(self, path: str = "/login/wechat/", data: dict | None = None, *, page: str = "/login/") -> str:
        """Press a WeChat button: the address WeChat's page is at."""
        response = self.post(path, data, page=page)
        assert response.status_code == 302, response.text[:500]
        return response.headers["Location"]

    def wechat_sends_back(self, wechat_url: str) -> str:
        """Open WeChat's page (the QR is scanned, or the person is inside WeChat): where WeChat sends the browser."""
        answer = self.get(wechat_url)
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]

    def is_signed_in_as(self) -> str | None:
        page = self.get("/account/")
        if page.status_code != 200:
            return None
        match = re.search(r'name="first_name"[^>]*value="([^"]*)"', page.text) or re.search(
            r'value="([^"]*)"[^>]*name="first_name"', page.text
        )
        return match.group(1) if match else ""


def log_in_with_wechat(browser: Browser, **kwargs) -> requests.Response:
    callback = browser.wechat_sends_back(browser.to_wechat(**kwargs))
    return browser.get(callback)


def test_on_a_desktop_the_button_leads_to_wechats_qr_page_with_the_website_app(live_server, wechat):
    location = Browser(live_server.url).to_wechat()

    parts = urlsplit(location)
    params = dict(parse_qsl(parts.query))
    assert parts.path == "/connect/qrconnect"
    assert params["appid"] == WEB_APPID and params["scope"] == "snsapi_login" and params["response_type"] == "code"
    assert params["redirect_uri"] == live_server.url + "/login/wechat/callback/"
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", params["state"])


def test_inside_wechat_the_button_uses_the_official_accounts_oauth(live_server, wechat):
    location = Browser(live_server.url, IN_WECHAT).to_wechat()

    parts = urlsplit(location)
    assert parts.path == "/connect/oauth2/authorize" and parts.fragment == "wechat_redirect"
    assert list(dict(parse_qsl(parts.query))) == ["appid", "redirect_uri", "response_type", "scope", "state"]
    assert dict(parse_qsl(parts.query))["appid"] == MP_APPID
    assert dict(parse_qsl(parts.query))["scope"] == "snsapi_userinfo"


def test_someone_new_gets_an_account_and_joins_and_is_signed_in(live_server, wechat):
    wechat.user, wechat.nicknames["alice"] = "alice", "小明"
    browser = Browser(live_server.url)

    landed = log_in_with_wechat(browser)

    assert landed.status_code == 302 and landed.headers["Location"] == "/dashboard/"
    account = SocialAccount.objects.get(provider="weixin")
    assert account.uid == wechat.unionid_for("alice")
    user = account.user
    assert (user.email, user.phone, user.first_name, user.has_usable_password()) == (None, None, "小明", False)
    assert Member.objects.get(user=user).parent_id is None
    assert browser.is_signed_in_as() == "小明"


def test_the_same_person_in_wechats_browser_and_by_qr_is_one_account(live_server, wechat):
    wechat.user = "bob"
    log_in_with_wechat(Browser(live_server.url))
    inside = Browser(live_server.url, IN_WECHAT)

    log_in_with_wechat(inside)

    assert get_user_model().objects.count() == 1
    assert SocialAccount.objects.get().uid == wechat.unionid_for("bob")
    assert inside.is_signed_in_as() is not None


def test_an_existing_member_logs_in_with_wechat(live_server, wechat):
    wechat.user = "carol"
    log_in_with_wechat(Browser(live_server.url))
    again = Browser(live_server.url)

    landed = log_in_with_wechat(again)

    assert landed.status_code == 302
    assert get_user_model().objects.count() == 1 and Member.objects.count() == 1
    assert again.is_signed_in_as() is not None


def test_signing_up_with_wechat_from_an_invite_joins_under_the_sponsor(live_server, wechat):
    sponsor = MemberFactory()
    wechat.user = "dave"
    browser = Browser(live_server.url)
    page = f"/join/{sponsor.invite_code}/"

    callback = browser.wechat_sends_back(browser.to_wechat(f"/join/{sponsor.invite_code}/wechat/", page=page))
    browser.get(callback)

    member = Member.objects.get(user__socialaccount__uid=wechat.unionid_for("dave"))
    assert member.parent_id == sponsor.pk


def test_a_state_from_another_browser_is_refused(live_server, wechat):
    wechat.user = "eve"
    attacker = Browser(live_server.url)
    callback = attacker.wechat_sends_back(attacker.to_wechat())  # the attacker's own code and state
    victim = Browser(live_server.url)
    victim.to_wechat()  # the victim has a login of their own on its way

    answer = victim.get(callback)

    assert answer.status_code == 400
    assert "did not work" in answer.text
    assert SocialAccount.objects.count() == 0 and get_user_model().objects.count() == 0


def test_a_replayed_code_is_refused(live_server, wechat):
    wechat.user = "frank"
    browser = Browser(live_server.url)
    first = browser.wechat_sends_back(browser.to_wechat())
    browser.get(first)
    used_code = dict(parse_qsl(urlsplit(first).query))["code"]
    other = Browser(live_server.url)
    fresh_state = dict(parse_qsl(urlsplit(other.to_wechat()).query))["state"]

    answer = other.get(f"/login/wechat/callback/?code={used_code}&state={fresh_state}")

    assert answer.status_code == 400
    assert ("/sns/oauth2/access_token", 40163) in wechat.refused
    assert other.is_signed_in_as() is None


def test_an_expired_code_is_refused(live_server, wechat):
    wechat.user = "grace"
    browser = Browser(live_server.url)
    callback = browser.wechat_sends_back(browser.to_wechat())
    real_clock = wechat.clock
    wechat.clock = lambda: real_clock() + 301

    answer = browser.get(callback)

    assert answer.status_code == 400
    assert ("/sns/oauth2/access_token", 42003) in wechat.refused
    assert get_user_model().objects.count() == 0


def test_the_wechat_login_is_hidden_and_closed_unless_configured(live_server, client, settings):
    settings.WECHAT_LOGIN_WEB_APPID = settings.WECHAT_LOGIN_MP_APPID = ""

    assert "Log in with WeChat" not in client.get("/login/").content.decode()
    assert client.post("/login/wechat/").status_code == 404
    assert client.get("/login/wechat/callback/?code=x&state=y").status_code == 404


# --- binding and unbinding -------------------------------------------------------------------------------------


def signed_in(live_server, user) -> Browser:
    browser = Browser(live_server.url)
    response = browser.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text[:300]
    return browser


def test_a_member_binds_wechat_and_then_logs_in_with_it(live_server, wechat):
    user = MemberFactory().user
    browser = signed_in(live_server, user)
    wechat.user = "heidi"

    callback = browser.wechat_sends_back(browser.to_wechat("/account/logins/wechat/bind/", page="/account/logins/"))
    back = browser.get(callback)

    assert back.status_code == 302 and back.headers["Location"] == "/account/logins/"
    assert SocialAccount.objects.get().user_id == user.pk
    fresh = Browser(live_server.url)
    log_in_with_wechat(fresh)
    assert get_user_model().objects.count() == 1
    assert fresh.is_signed_in_as() == user.first_name


def test_a_wechat_bound_to_another_account_is_refused_with_how_to_move_it(live_server, wechat):
    wechat.user = "ivan"
    log_in_with_wechat(Browser(live_server.url))  # ivan's WeChat has an account of its own
    owner = SocialAccount.objects.get().user
    user = MemberFactory().user
    browser = signed_in(live_server, user)

    callback = browser.wechat_sends_back(browser.to_wechat("/account/logins/wechat/bind/", page="/account/logins/"))
    browser.get(callback)
    page = browser.get("/account/logins/")

    assert SocialAccount.objects.get().user_id == owner.pk  # not moved, not merged
    assert "already bound to another account" in page.text
    assert "unbind WeChat" in page.text


def test_unbinding_wechat_is_refused_when_it_is_the_only_way_in(live_server, wechat):
    wechat.user = "judy"
    browser = Browser(live_server.url)
    log_in_with_wechat(browser)
    account = SocialAccount.objects.get()

    answer = browser.post(f"/account/logins/wechat/{account.pk}/unbind/", page="/account/logins/")

    assert answer.status_code == 302
    assert SocialAccount.objects.filter(pk=account.pk).exists()
    assert "last way to log in" in browser.get("/account/logins/").text


def test_unbinding_wechat_works_when_a_password_remains(live_server, wechat):
    user = MemberFactory().user
    browser = signed_in(live_server, user)
    wechat.user = "ken"
    browser.get(browser.wechat_sends_back(browser.to_wechat("/account/logins/wechat/bind/", page="/account/logins/")))
    account = SocialAccount.objects.get(user=user)

    browser.post(f"/account/logins/wechat/{account.pk}/unbind/", page="/account/logins/")

    assert not SocialAccount.objects.filter(pk=account.pk).exists()


def test_another_members_wechat_binding_cannot_be_unbound(live_server, wechat):
    wechat.user = "leo"
    log_in_with_wechat(Browser(live_server.url))
    account = SocialAccount.objects.get()
    other = signed_in(live_server, MemberFactory().user)

    answer = other.post(f"/account/logins/wechat/{account.pk}/unbind/", page="/account/logins/")

    assert answer.status_code == 404
    assert SocialAccount.objects.filter(pk=account.pk).exists()


def test_the_login_page_offers_wechat_when_configured(live_server, wechat):
    page = Browser(live_server.url).get("/login/").text

    assert "Log in with WeChat" in page and "Log in with a code by SMS" in page


def test_make_runs_payment_fakes_turn_wechat_login_on(live_server, settings, monkeypatch, tmp_path):
    """`make run PAYMENTS_FAKE=1`: the settings the fakes' command writes make the QR login work against them."""
    with PaymentGatewaysFake() as gateways:
        values = write_settings(gateways, tmp_path / "env")
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        for name in [n for n in values if n.startswith("WECHAT_LOGIN_")]:
            setting = name.removesuffix("_FILE")
            setattr(settings, setting, env_secret(setting) if name.endswith("_FILE") else values[name])
        settings.SOCIALACCOUNT_PROVIDERS = {
            "weixin": {
                "APPS": [{"client_id": settings.WECHAT_LOGIN_WEB_APPID, "secret": settings.WECHAT_LOGIN_WEB_SECRET}]
            }
        }
        gateways.wechatpay.oauth.user = "mallory"
        browser = Browser(live_server.url)

        landed = log_in_with_wechat(browser)

    assert landed.status_code == 302
    assert SocialAccount.objects.get().uid == gateways.wechatpay.oauth.unionid_for("mallory")


def test_binding_wechat_needs_a_recent_login(live_server, wechat, client):
    user = MemberFactory().user
    client.force_login(user)
    session = client.session
    session["login_at"] = 0
    session.save()

    response = client.post("/account/logins/wechat/bind/")

    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_inactive_account_is_not_logged_in_with_wechat(live_server, wechat):
    wechat.user = "nina"
    log_in_with_wechat(Browser(live_server.url))
    get_user_model().objects.update(is_active=False)
    browser = Browser(live_server.url)

    answer = log_in_with_wechat(browser)

    assert answer.status_code == 403 and "This account is inactive." in answer.text
    assert browser.is_signed_in_as() is None


def test_binding_and_unbinding_wechat_login_never_touches_the_payout_payee(live_server, wechat):
    member = MemberFactory()
    payee = PayoutAccount.objects.create(
        member=member, method="wechat", holder_name="王芳", wechat_openid="oPAYEE0000000000000000000000"
    )
    before = PayoutAccount.objects.filter(pk=payee.pk).values().get()
    browser = signed_in(live_server, member.user)
    wechat.user = "olga"
    browser.get(browser.wechat_sends_back(browser.to_wechat("/account/logins/wechat/bind/", page="/account/logins/")))
    account = SocialAccount.objects.get(user=member.user)

    browser.post(f"/account/logins/wechat/{account.pk}/unbind/", page="/account/logins/")

    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    assert PayoutAccount.objects.filter(pk=payee.pk).values().get() == before
