"""A member sets up a webhook in Chromium, at 375 px and 1280 px, in English and Chinese: a bad URL is a form error,
a good one shows the signing secret once; an event then arrives at a real receiver (http.server on localhost) that
checks the signature with the secret the page showed; the delivery's page shows the attempt, and Replay sends it
again. Nothing is wider than the screen. Screenshots in artifacts/screenshots/webhooks/."""

from pathlib import Path

import pytest
from django.urls import reverse

from members.webhooks.models import Delivery
from tests.factories import MemberFactory
from tests.webhooks.conftest import receiver  # noqa: F401 - fixture
from tests.webhooks.helpers import announce_commission

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "webhooks"


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_member_sets_up_a_webhook_and_replays_a_delivery(
    live_server,
    chromium,
    client,
    receiver,  # noqa: F811 - the fixture imported above
    settings,
    language,
    width,
):
    member = MemberFactory()
    client.force_login(member.user)
    context = chromium.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
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

    def shot(name: str) -> None:
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        page.screenshot(path=str(SCREENSHOTS / f"{language}-{name}-{width}.png"), full_page=True)

    # the dashboard leads to the page
    page.goto(live_server.url + reverse("members:dashboard"))
    page.locator(f'#webhooks-card a[href="{reverse("members:webhooks")}"]').click()
    page.wait_for_url("**" + reverse("members:webhooks"))
    shot("webhooks-empty")

    # a bad URL is a form error, nothing saved
    page.fill("#id_url", "not a url")
    page.check('input[value="commission.created"]')
    page.locator("main form button[type=submit]").last.click()
    page.locator(".errorlist").first.wait_for()
    assert not member.webhook_endpoints.exists()
    shot("webhooks-error")

    # a good one: the secret is shown once
    page.fill("#id_url", receiver.url)
    page.fill("#id_description", "ERP")
    page.locator("main form button[type=submit]").last.click()
    secret = page.locator("#secret .copy").inner_text().strip()
    assert secret.startswith("whsec_")
    receiver.secrets.append(secret)
    shot("webhook-created")

    # an event about the member arrives, signed with that secret
    announce_commission(member, "12.30")
    assert [request.verified for request in receiver.received] == [True]
    page.reload()
    assert page.locator("#secret").count() == 0
    delivery = Delivery.objects.get(endpoint__owner=member)
    page.locator(f"#delivery-{delivery.pk}").wait_for()
    shot("webhook-endpoint")

    # its page, and Replay
    page.locator(f'#delivery-{delivery.pk} a[href="{reverse("members:webhook_delivery", args=[delivery.pk])}"]').click()
    page.locator("#attempt-1").wait_for()
    page.locator("#delivery form button[type=submit]").click()
    page.locator("#attempt-2").wait_for()
    assert len(receiver.received) == 2 and all(request.verified for request in receiver.received)
    page.locator("details summary").click()
    shot("webhook-delivery")
    context.close()
