"""The member's payout page in Chromium: "Confirm receipt in WeChat" hands WeChat's bridge the transfer bill's
package (a fake WeixinJSBridge stands in for WeChat's in-app browser: it plays the member confirming at the
WeChat Pay fake), then the page asks the server, which finds the transfer paid. Outside WeChat the page says to
open it in WeChat."""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from payouts.models import Withdrawal
from tests.e2e.conftest import PHONE
from tests.payments.conftest import alipay, gateways, wechat, wechat_settings  # noqa: F401 - fixtures
from tests.payouts.conftest import rails  # noqa: F401 - the fixture
from tests.payouts.helpers import OPENID, approved, fresh, send_batch, transfer_of, wechat_member

# What WeChat's in-app browser provides, reduced to the one call the page makes; the confirmation is played by the
# test (window.fakeWeChatConfirm, exposed by Playwright), as the member tapping 确认收款.
FAKE_BRIDGE = """
window.WeixinJSBridge = {
  invoke: function (name, params, done) {
    window.fakeWeChatConfirm(name, params).then(
      function () { done({err_msg: name + ":ok"}); },
      function () { done({err_msg: name + ":fail"}); }
    );
  }
};
"""


def member_context(chromium, client, live_server, member):
    client.force_login(member.user)
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    return context


def test_the_member_confirms_receipt_in_wechat_and_is_paid(rails, live_server, chromium, client, wechat):  # noqa: F811
    member = wechat_member()
    withdrawal = approved(member, "30.00")
    send_batch()
    context = member_context(chromium, client, live_server, member)
    calls = []

    def confirm(name, params):
        calls.append((name, params))
        wechat.payee_confirms(params, openid=OPENID)

    context.expose_function("fakeWeChatConfirm", confirm)
    context.add_init_script(FAKE_BRIDGE)
    page = context.new_page()
    page.set_default_timeout(15_000)

    page.goto(live_server.url + reverse("members:payouts"))
    page.get_by_role("button", name="Confirm receipt in WeChat").click()
    page.get_by_text(f"Withdrawal {withdrawal.pk} is paid.").wait_for()

    transfer = transfer_of(withdrawal)
    assert calls == [
        ("requestMerchantTransfer", {"mchId": wechat.mchid, "appId": wechat.appid, "package": transfer.package_info})
    ]
    assert fresh(withdrawal).status == Withdrawal.Status.PAID
    assert page.get_by_role("button", name="Confirm receipt in WeChat").count() == 0
    context.close()


def test_outside_wechat_the_page_says_to_open_it_in_wechat(rails, live_server, chromium, client):  # noqa: F811
    member = wechat_member()
    withdrawal = approved(member, "30.00")
    send_batch()
    context = member_context(chromium, client, live_server, member)
    page = context.new_page()
    page.set_default_timeout(15_000)

    page.goto(live_server.url + reverse("members:payouts"))
    note = page.get_by_text("Open this page in WeChat to confirm receipt.")
    assert not note.is_visible()
    page.get_by_role("button", name="Confirm receipt in WeChat").click()

    note.wait_for()
    assert fresh(withdrawal).status == Withdrawal.Status.PROCESSING
    context.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "payments"


@pytest.mark.parametrize(("language", "button"), [("en", "Confirm receipt in WeChat"), ("zh-hans", "在微信中确认收款")])
def test_the_payout_page_of_a_transfer_waiting_for_the_member(rails, live_server, chromium, client, language, button):  # noqa: F811
    """Screenshots for people to look at (375 and 1280 px, both languages): the withdrawal waits for the member."""
    member = wechat_member()
    approved(member, "30.00")
    send_batch()
    context = member_context(chromium, client, live_server, member)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(live_server.url + reverse("members:payouts"))
    assert page.get_by_role("button", name=button).is_visible()
    page.screenshot(path=str(SCREENSHOTS / f"{language}-transfer-waiting-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / f"{language}-transfer-waiting-1280.png"), full_page=True)
    context.close()
