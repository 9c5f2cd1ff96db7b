"""The team page's earnings by level and the leaderboard in Chromium, at 375 and 1280 px, in English and Chinese: no
sideways scrolling, the member switches boards, chooses to be named and finds their name on the board, while a
member who did not choose stays anonymised. Screenshots in artifacts/screenshots/team/."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from commissions.models import CommissionEntry as Entry
from commissions.services import plan_activate, plan_create, policy_publish
from members.selectors import leaderboard_pseudonym
from referrals.models import Member
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

D = Decimal
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "team"
WIDTHS = (375, 1280)
# The checkbox's label, written out (not looked up with gettext) so that a missing translation shows.
NAMED_LABEL = {"en": "Show my name and shop on the leaderboards", "zh-hans": "在排行榜上显示我的名字和店铺"}


def member(name, sponsor=None, *, named=False):
    found = MemberFactory(user=UserFactory(first_name=name), sponsor=sponsor)
    if named:
        Member.objects.filter(pk=found.pk).update(is_named_on_leaderboard=True)
    return found


@pytest.fixture
def team():
    """Me under a sponsor, with two levels of team below me, everyone selling under a three-level 50/30/20 plan;
    the longest names and shop names the pages have to fit. A secret seller sells most and is not named."""
    policy_publish(actor=None, max_levels=3, note="three levels")
    rates = (D("0.5000"), D("0.3000"), D("0.2000"))
    plan_activate(plan=plan_create(actor=None, name="50/30/20", rates=rates), actor=None)
    sponsor = member("Sponsorina", named=True)
    me = member("Maximiliana-Konstantinopolous", sponsor)
    first = [member(f"Bartholomew-Alexandros-{n}", me, named=n % 2 == 0) for n in range(3)]
    second = [member(f"Second-level-{n}", first[n % 3]) for n in range(4)]
    secret = member("Secretseller")
    product = ProductFactory(price=D("9999.99"), commission_rate=D("0.2000"), stock=10_000)
    sellers = [(me, 3), (sponsor, 2), (secret, 30), *((who, n + 1) for n, who in enumerate(first + second))]
    for n, (who, quantity) in enumerate(sellers):
        shop = shop_with_products(product, owner=who, name=f"小店 {n} — a rather long shop name for a phone")
        pay_order(place_order(shop, {product: quantity}))  # committed: the split runs in-process on commit
    Entry.objects.filter(beneficiary=me, level=1).update(status=Entry.Status.AVAILABLE)
    return {"me": me, "secret": secret}


def open_as(chromium, live_server, client, who, language, width):
    client.force_login(who.user)
    session = django_settings.SESSION_COOKIE_NAME
    context = chromium.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    context.add_cookies(
        [
            {"name": session, "value": client.cookies[session].value, "url": live_server.url},
            {"name": "django_language", "value": language, "url": live_server.url},
        ]
    )  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def fits(page, width) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", WIDTHS)
def test_team_earnings_and_leaderboard_in_the_browser(live_server, chromium, client, team, language, width):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context, page = open_as(chromium, live_server, client, team["me"], language, width)

    page.goto(live_server.url + reverse("members:team"))
    assert page.locator("#level-earnings > li").count() == 4  # three levels and the total
    assert fits(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"{language}-team-{width}.png"), full_page=True)

    page.locator("#leaderboard-link").click()
    page.locator("#periods a[aria-current=page]").wait_for()
    page.locator("#metrics a").nth(1).click()  # earnings
    page.wait_for_url("**by=earnings**")
    board = page.locator("#board")
    secret = leaderboard_pseudonym(team["secret"].pk)
    assert "Secretseller" not in page.content()
    assert board.locator("li").first.inner_text().split("\n")[1].endswith(secret.split("#")[1])
    assert fits(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"{language}-leaderboard-{width}.png"), full_page=True)

    checkbox = page.locator("#leaderboard-name input[name=is_named]")
    checkbox.check()
    page.locator("#leaderboard-name button[type=submit]").click()
    page.wait_for_url("**by=earnings**")

    assert Member.objects.get(pk=team["me"].pk).is_named_on_leaderboard
    assert checkbox.is_checked()
    assert board.locator("li.me").count() == 1
    assert fits(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"{language}-leaderboard-named-{width}.png"), full_page=True)
    label = page.locator("#leaderboard-name label.check").inner_text().strip()
    context.close()
    assert label == NAMED_LABEL[language]  # in Chinese once the catalogue has it
