"""A member binds their WeChat payee in Chromium (WeChat's in-app browser's User-Agent): "Bind my WeChat" goes to
WeChat's silent OAuth (the fake), which sends the browser straight back, and the page says the WeChat is bound.
Screenshots of the account page at 375 px, in English and Chinese (artifacts/screenshots/payments/)."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from payouts.models import PayoutAccount
from tests.e2e.conftest import PHONE
from tests.payments.conftest import alipay, gateways, oauth_fake, wechat, wechat_settings  # noqa: F401 - fixtures
from tests.payouts.helpers import wechat_member

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "payments"
IN_WECHAT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0"
    " Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240501 MicroMessenger/8.0.50.2701"
)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_member_binds_their_wechat(live_server, chromium, client, oauth_fake, settings, language):  # noqa: F811
    settings.SITE_URL = live_server.url
    oauth_fake.domains = {urlsplit(live_server.url).hostname}
    member = wechat_member()
    PayoutAccount.objects.filter(member=member).update(wechat_openid="")
    client.force_login(member.user)
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1, user_agent=IN_WECHAT)
    context.add_cookies(
        [
            {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
             "url": live_server.url},
            {"name": "django_language", "value": language, "url": live_server.url},
        ]
    )  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(live_server.url + reverse("members:payout_account"))
    bind = page.locator(f'a[href="{reverse("members:payout_account_wechat")}"]')
    assert bind.is_visible()
    page.screenshot(path=str(SCREENSHOTS / f"{language}-payee-bind-375.png"), full_page=True)
    bind.click()
    page.locator("#wechat-bind p", has_text=oauth_fake.openid_for()[:4] + "…").wait_for()

    assert PayoutAccount.objects.get(member=member).wechat_openid == oauth_fake.openid_for()
    assert page.url.split("#")[0] == live_server.url + reverse("members:payout_account")  # WeChat's fragment kept
    page.screenshot(path=str(SCREENSHOTS / f"{language}-payee-bound-375.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()
