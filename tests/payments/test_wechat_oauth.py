"""WeChat's silent web OAuth (shops/payments/wechat_oauth.py) against the local fake: the authorize URL WeChat
expects, the code exchanged once for the openid, and every refusal WeChat answers with."""

import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from shops.payments import wechat_oauth
from shops.payments.fakes.wechat_oauth import WeChatOAuthFake
from shops.payments.wechat_oauth import WeChatOAuthError
from tests.payments.conftest import http

IN_WECHAT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0"
    " Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240501 MicroMessenger/8.0.50.2701"
)
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
REDIRECT_URI = "https://shop.example.com/wechat/oauth/return/?next=1"


def authorize(state: str = "abc123", user_agent: str = IN_WECHAT, redirect_uri: str = REDIRECT_URI):
    """What WeChat's browser does with the authorize URL: (status, body, where it is sent)."""
    return http(wechat_oauth.authorize_url(redirect_uri, state), headers={"User-Agent": user_agent})


def code_from(location: str) -> tuple[str, str]:
    params = dict(parse_qsl(urlsplit(location).query))
    return params["code"], params["state"]


def test_the_authorize_url_is_wechats_with_its_parameters_in_order(settings):
    settings.WECHAT_OAUTH_APPID = "wx1234567890abcdef"
    settings.WECHAT_OAUTH_URL = "https://open.weixin.qq.com"

    url = wechat_oauth.authorize_url("https://shop.example.com/wechat/oauth/return/", "s1")

    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef"
        "&redirect_uri=https%3A%2F%2Fshop.example.com%2Fwechat%2Foauth%2Freturn%2F"
        "&response_type=code&scope=snsapi_base&state=s1#wechat_redirect"
    )


@pytest.mark.parametrize("state", ["", "has space", "a" * 129, "中文"])
def test_a_state_wechat_would_not_carry_back_is_refused(state):
    with pytest.raises(ValueError, match="state"):
        wechat_oauth.authorize_url(REDIRECT_URI, state)


def test_wechat_sends_the_browser_back_with_a_code_that_gives_the_openid(oauth_fake):
    status, _body, location = authorize("st4te")

    assert status == 302
    assert location.startswith(REDIRECT_URI + "&code=")
    code, state = code_from(location)
    assert state == "st4te"
    assert wechat_oauth.openid_for_code(code) == oauth_fake.openid_for()
    assert len(oauth_fake.openid_for()) == 28 and oauth_fake.openid_for().startswith("o")


def test_a_code_works_once(oauth_fake):
    code, _state = code_from(authorize()[2])
    wechat_oauth.openid_for_code(code)

    with pytest.raises(WeChatOAuthError, match="40163"):
        wechat_oauth.openid_for_code(code)

    assert oauth_fake.refused == [("/sns/oauth2/access_token", 40163)]


def test_a_code_expires_after_five_minutes(oauth_fake):
    code, _state = code_from(authorize()[2])
    oauth_fake.clock = lambda: time.time() + 301

    with pytest.raises(WeChatOAuthError, match="42003"):
        wechat_oauth.openid_for_code(code)


def test_a_code_from_another_account_or_made_up_is_refused(oauth_fake):
    with pytest.raises(WeChatOAuthError, match="40029"):
        wechat_oauth.openid_for_code("0" * 32)


def test_a_wrong_secret_is_refused_and_the_code_stays_unused(oauth_fake, settings):
    code, _state = code_from(authorize()[2])
    settings.WECHAT_OAUTH_SECRET = "f" * 32

    with pytest.raises(WeChatOAuthError, match="40125") as refusal:
        wechat_oauth.openid_for_code(code)

    assert "f" * 32 not in str(refusal.value) and code not in str(refusal.value)
    settings.WECHAT_OAUTH_SECRET = oauth_fake.secret
    assert wechat_oauth.openid_for_code(code) == oauth_fake.openid_for()


def test_a_wrong_appid_is_refused_at_both_steps(oauth_fake, settings):
    code, _state = code_from(authorize()[2])
    settings.WECHAT_OAUTH_APPID = "wx0000000000000000"

    status, body, location = authorize()
    with pytest.raises(WeChatOAuthError, match="40013"):
        wechat_oauth.openid_for_code(code)

    assert (status, location) == (200, "") and "40013" in body.decode()


def test_outside_wechat_the_page_only_says_to_open_it_in_wechat(oauth_fake):
    status, body, location = authorize(user_agent=PHONE_BROWSER)

    assert (status, location) == (200, "")
    assert "请在微信客户端打开链接" in body.decode()
    assert oauth_fake.codes == {}


def test_a_redirect_uri_outside_the_authorized_domains_is_refused(oauth_fake):
    oauth_fake.domains = {"shop.example.com"}

    refused = authorize(redirect_uri="https://elsewhere.example.net/steal/")
    allowed = authorize()

    assert refused[0] == 200 and "10003" in refused[1].decode() and refused[2] == ""
    assert allowed[0] == 302


def test_each_account_gives_a_user_another_openid(oauth_fake):
    other = WeChatOAuthFake(appid="wx0000000000000001")

    assert other.openid_for("someone") != oauth_fake.openid_for("someone")
    assert oauth_fake.openid_for("someone") != oauth_fake.openid_for("someone else")


def test_a_malformed_code_never_reaches_wechat(oauth_fake):
    with pytest.raises(WeChatOAuthError, match="malformed code"):
        wechat_oauth.openid_for_code("../../etc?x=1&secret=2")

    assert oauth_fake.refused == []


def test_wechat_unreachable_is_an_oauth_error(oauth_fake, settings):
    settings.WECHAT_API_URL = "http://127.0.0.1:9"  # discard: nothing listens
    settings.PAYMENTS_PROVIDER_TIMEOUT = 1

    with pytest.raises(WeChatOAuthError, match="cannot be reached"):
        wechat_oauth.openid_for_code("a" * 32)


def test_without_a_secret_it_is_not_configured(settings):
    settings.WECHAT_OAUTH_APPID = "wx1234567890abcdef"
    settings.WECHAT_OAUTH_SECRET = ""

    assert wechat_oauth.missing_settings() == ["WECHAT_OAUTH_SECRET"]
    with pytest.raises(WeChatOAuthError, match="not configured"):
        wechat_oauth.openid_for_code("a" * 32)
