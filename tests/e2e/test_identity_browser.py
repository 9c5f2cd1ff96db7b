"""The identity page in a phone-sized Chromium (issue #24): a member without an identity is sent there from the
payouts page, enters their legal name and ID, and sees it verified and masked, in English and in Chinese."""

from pathlib import Path

import pytest
from django.urls import reverse

from tests.e2e.conftest import PHONE
from tests.factories import MemberFactory
from tests.payouts.helpers import bank_account, credit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "identity"
NUMBER = "11010519491231002X"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_member_captures_their_identity_before_withdrawing(live_server, chromium, client, settings, language):
    settings.IDENTITY_VERIFIER = "core.id_verification.ConsoleIdVerifier"
    member = MemberFactory(identity=False)
    credit(member, "100.00")
    bank_account(member)
    client.force_login(member.user)
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
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

    # the payouts page says why a withdrawal must wait, and links to the identity page
    page.goto(live_server.url + reverse("members:payouts"))
    notice = page.locator("#identity-required")
    assert notice.is_visible()
    page.screenshot(path=str(SCREENSHOTS / f"{language}-payouts-identity-required-375.png"), full_page=True)
    notice.locator("a").click()
    page.wait_for_url(f"**{reverse('members:identity')}")

    # a mistyped check digit is an error under the field; the right number is verified and shown masked
    page.select_option("#id_id_type", "resident_id")
    page.fill("#id_legal_name", "王芳")
    page.fill("#id_id_number", "110105194912310021")
    page.locator("#identity form button[type=submit]").click()
    assert page.locator(".field.has-error").count() == 1
    page.screenshot(path=str(SCREENSHOTS / f"{language}-identity-error-375.png"), full_page=True)
    page.fill("#id_id_number", NUMBER)
    page.locator("#identity form button[type=submit]").click()
    page.wait_for_selector("dl.pairs")
    text = page.locator("#identity").inner_text()
    assert "110***********002X" in text and "王*" in text and NUMBER not in text
    page.screenshot(path=str(SCREENSHOTS / f"{language}-identity-verified-375.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing overflows sideways on a phone
    context.close()
