"""A member binds their WeChat payee themselves (members/views/payouts.py): on the payout account page, inside
WeChat's browser, "Bind my WeChat" goes through WeChat's silent OAuth (the local fake) and binds the openid WeChat
gives to the member of this session. The state is this session's and works once; the URLs name no member."""

from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from members.views.payouts import WECHAT_BIND_SESSION_KEY
from payouts.models import PayoutAccount
from payouts.services import payout_account_save
from tests.factories import MemberFactory
from tests.payments.conftest import http, oauth_fake  # noqa: F401 - fixtures used here

pytestmark = pytest.mark.django_db

IN_WECHAT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0"
    " Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240501 MicroMessenger/8.0.50.2701"
)
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ACCOUNT = reverse("members:payout_account")
BIND = reverse("members:payout_account_wechat")
RETURN = reverse("members:payout_account_wechat_return")


def wechat_member():
    member = MemberFactory()
    payout_account_save(member=member, method="wechat", holder_name="王芳", wechat_id="wangfang_88")
    return member


def signed_in(member) -> Client:
    client = Client(HTTP_USER_AGENT=IN_WECHAT)
    client.force_login(member.user)
    return client


def through_wechat(client: Client, *, wechat_user: str, oauth_fake) -> tuple[str, str]:  # noqa: F811
    """Bind my WeChat, then WeChat's authorize page as `wechat_user`'s browser: the (code, state) it sends back."""
    response = client.get(BIND)
    assert response.status_code == 302
    oauth_fake.user = wechat_user
    status, _body, location = http(response["Location"], headers={"User-Agent": IN_WECHAT})
    assert status == 302 and urlsplit(location).path == RETURN
    params = dict(parse_qsl(urlsplit(location).query))
    return params["code"], params["state"]


def openid(member) -> str:
    return PayoutAccount.objects.get(member=member).wechat_openid


def test_the_page_inside_wechat_offers_to_bind(oauth_fake):  # noqa: F811
    page = signed_in(wechat_member()).get(ACCOUNT).content.decode()

    assert f'href="{BIND}"' in page and "Bind my WeChat" in page


def test_outside_wechat_the_page_says_to_open_it_in_wechat(oauth_fake):  # noqa: F811
    client = signed_in(wechat_member())
    client.defaults["HTTP_USER_AGENT"] = PHONE_BROWSER

    page = client.get(ACCOUNT).content.decode()
    assert "To bind your WeChat, open this page in WeChat." in page and f'href="{BIND}"' not in page
    response = client.get(BIND, follow=True)
    assert "Open this page in WeChat to bind your WeChat." in response.content.decode()
    assert WECHAT_BIND_SESSION_KEY not in client.session


def test_a_member_binds_their_wechat(oauth_fake, settings):  # noqa: F811
    member = wechat_member()
    client = signed_in(member)

    code, state = through_wechat(client, wechat_user="wang", oauth_fake=oauth_fake)
    response = client.get(RETURN, {"code": code, "state": state}, follow=True)

    assert openid(member) == oauth_fake.openid_for("wang")
    page = response.content.decode()
    assert "Your WeChat is bound" in page
    assert f"WeChat payee bound ({oauth_fake.openid_for('wang')[:4]}…)" in page
    assert oauth_fake.openid_for("wang") not in page  # shown masked only


def test_a_state_works_once_and_a_used_code_is_refused(oauth_fake):  # noqa: F811
    member = wechat_member()
    client = signed_in(member)
    code, state = through_wechat(client, wechat_user="wang", oauth_fake=oauth_fake)
    assert client.get(RETURN, {"code": code, "state": state}).status_code == 302
    PayoutAccount.objects.filter(member=member).update(wechat_openid="")

    assert client.get(RETURN, {"code": code, "state": state}).status_code == 400  # the state is used up
    _other_code, new_state = through_wechat(client, wechat_user="wang", oauth_fake=oauth_fake)
    response = client.get(RETURN, {"code": code, "state": new_state}, follow=True)  # the code is used up

    assert "WeChat could not tell us who you are" in response.content.decode()
    assert openid(member) == ""
    assert ("/sns/oauth2/access_token", 40163) in oauth_fake.refused


def test_a_state_this_session_did_not_send_is_refused_and_nothing_is_exchanged(oauth_fake):  # noqa: F811
    member = wechat_member()
    client = signed_in(member)
    code, state = through_wechat(client, wechat_user="wang", oauth_fake=oauth_fake)

    response = client.get(RETURN, {"code": code, "state": state[:-1] + ("0" if state[-1] != "0" else "1")})

    assert response.status_code == 400
    assert "WeChat sign-in not accepted" in response.content.decode()
    assert openid(member) == ""
    assert oauth_fake.codes[code].used is False


def test_another_members_session_cannot_bind_anyone_with_a_code_sent_to_someone_else(oauth_fake):  # noqa: F811
    victim, attacker = wechat_member(), wechat_member()
    victim_client, attacker_client = signed_in(victim), signed_in(attacker)
    code, state = through_wechat(victim_client, wechat_user="wang", oauth_fake=oauth_fake)

    # The victim's code and state, landing in the attacker's session (a link sent to them, or the other way round).
    assert attacker_client.get(RETURN, {"code": code, "state": state}).status_code == 400
    # The attacker's own state with the victim's code still binds nobody but the attacker, and only once WeChat
    # accepts the code; here the victim's browser uses it first.
    assert victim_client.get(RETURN, {"code": code, "state": state}).status_code == 302

    assert openid(victim) == oauth_fake.openid_for("wang")
    assert openid(attacker) == ""
    assert "member" not in BIND and "member" not in RETURN and str(victim.pk) not in BIND + RETURN


def test_binding_needs_wechat_pay_as_the_method(oauth_fake):  # noqa: F811
    member = MemberFactory()
    payout_account_save(member=member, method="alipay", holder_name="王芳", alipay_account="wangfang@example.com")
    client = signed_in(member)

    response = client.get(BIND, follow=True)

    assert "Choose WeChat Pay as the payout method first." in response.content.decode()
    assert WECHAT_BIND_SESSION_KEY not in client.session


def test_binding_needs_a_member_signed_in(client, settings, oauth_fake):  # noqa: F811
    assert client.get(BIND)["Location"].startswith(reverse(settings.LOGIN_URL))
    assert client.get(RETURN, {"code": "c", "state": "s"})["Location"].startswith(reverse(settings.LOGIN_URL))
