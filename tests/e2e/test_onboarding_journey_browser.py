"""A new member's journey on a 375 px phone, counted (issue #23): a sponsor's invite link → an account (email and
password) → the shop opened at the suggested address → three products added → a share link ready and copied.

Every tap (a click on a field, a button or a link) and every field typed into is counted, and the whole journey is
timed: at most 12 taps, 5 typed fields and 60 s. Playwright is faster than a person, so the time a person who knows
what to do would take is also worked out from the counts (PERSON_SECONDS_PER_TAP per tap,
PERSON_SECONDS_PER_KEY per key typed, a Chinese character PINYIN_KEYS_PER_HAN keys) on top of the measured page time,
and held to the same 60 s. The counts are printed (pytest -s).
"""

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.urls import reverse

from referrals.models import Member
from shops.models import ShareLink, Shop
from tests.e2e.conftest import PHONE
from tests.factories import PASSWORD, MemberFactory, ProductFactory, ShopFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_TAPS = 12
MAX_TYPED_FIELDS = 5
MAX_SECONDS = 60
PERSON_SECONDS_PER_TAP = 1.5  # find the control, tap it
PERSON_SECONDS_PER_KEY = 0.3  # about 200 keys a minute on a phone keyboard
PINYIN_KEYS_PER_HAN = 4  # 张 is typed "zhang" and picked from the candidates
HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Journey:
    """Counts what the person does: taps (clicks) and fields typed into (with the keys typed)."""

    taps: int = 0
    typed_fields: int = 0
    keys: int = 0
    steps: list = field(default_factory=list)

    def tap(self, locator, what: str) -> None:
        self.taps += 1
        self.steps.append(f"tap: {what}")
        locator.click()

    def type_into(self, locator, text: str, what: str) -> None:
        self.tap(locator, what)  # the field is tapped to type into it
        self.typed_fields += 1
        self.keys += len(HAN.sub("", text)) + PINYIN_KEYS_PER_HAN * len(HAN.findall(text))
        self.steps.append(f"type: {what} ({text!r})")
        locator.fill(text)

    def person_seconds(self, page_seconds: float) -> float:
        return page_seconds + self.taps * PERSON_SECONDS_PER_TAP + self.keys * PERSON_SECONDS_PER_KEY


def test_a_new_member_goes_from_the_invite_link_to_a_shared_link_within_the_tap_budget(live_server, chromium):
    sponsor = MemberFactory()
    products = [
        ProductFactory(title=title, price=Decimal("39.00"), commission_rate=Decimal("0.1000"))
        for title in ("Longjing green tea", "Sesame crackers", "Bamboo towel", "Clay teapot")
    ]
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1, has_touch=True, is_mobile=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    policy_errors = []
    page.on("console", lambda message: "Content Security Policy" in message.text and policy_errors.append(message.text))
    journey = Journey()
    started = time.monotonic()

    # --- the sponsor's invite link: the sign-up form (email and password, as today) ---
    page.goto(live_server.url + reverse("members:join_with_code", args=[sponsor.invite_code]))
    journey.type_into(page.get_by_label("Email address", exact=True), "xiaoming@example.com", "email")
    journey.type_into(page.get_by_label("Your name", exact=True), "张小明", "name")
    journey.type_into(page.get_by_label("Password", exact=True), PASSWORD, "password")
    journey.type_into(page.get_by_label("Password confirmation", exact=True), PASSWORD, "password again")
    journey.tap(page.get_by_role("button", name="Create my account and join"), "create my account")

    # --- straight on to "open your shop", filled in: the pinyin of the name, said to be free as it is shown ---
    page.wait_for_url(f"**{reverse('members:my_shop')}")
    assert page.get_by_label("Shop name", exact=True).input_value() == "张小明's shop"
    assert page.get_by_label("Shop address", exact=True).input_value() == "zhangxiaoming"
    page.locator("#address-check.is-available").wait_for()
    journey.tap(page.get_by_role("button", name="Open my shop"), "open my shop")

    # --- the catalogue: one tap per product, the page comes back at the same product ---
    page.wait_for_url(f"**{reverse('members:my_shop_catalogue')}")
    for product in products[:3]:
        row = page.locator(f"#product-{product.pk}")
        journey.tap(row.get_by_role("button", name="Add to my shop"), f"add {product.title}")
        page.locator(f"#product-{product.pk}", has_text="In my shop").wait_for()

    # --- share one: its share page, the link ready to copy ---
    journey.tap(page.locator(f"#product-{products[0].pk}").get_by_role("link", name="Share"), "share")
    page.wait_for_url(f"**{reverse('members:share_product', args=[products[0].pk])}")
    link_url = page.locator("#share-url").inner_text().strip()
    copy = page.get_by_role("button", name="Copy link")
    journey.tap(copy, "copy link")
    page.get_by_role("button", name="Copied").wait_for()
    elapsed = time.monotonic() - started

    member = Member.objects.get(user__email="xiaoming@example.com")
    shop = Shop.objects.get(owner=member)
    link = ShareLink.objects.get(code=link_url.rsplit("/", 1)[1])
    person = journey.person_seconds(elapsed)
    print(
        f"\nonboarding journey at {PHONE['width']} px: {journey.taps} taps (≤ {MAX_TAPS}), "
        f"{journey.typed_fields} typed fields (≤ {MAX_TYPED_FIELDS}), {journey.keys} keys, "
        f"{elapsed:.1f} s in the browser, about {person:.0f} s for a person (≤ {MAX_SECONDS})"
    )
    print("\n".join(f"  {number}. {step}" for number, step in enumerate(journey.steps, 1)))

    # the journey did what it says
    assert member.parent_id == sponsor.pk
    assert (shop.slug, shop.name, shop.is_open) == ("zhangxiaoming", "张小明's shop", True)
    assert set(shop.products.all()) == set(products[:3])
    assert (link.owner, link.product, link.is_active) == (member, products[0], True)
    assert re.fullmatch(re.escape(live_server.url) + r"/l/\S+", link_url), link_url
    # within the budget
    assert journey.taps <= MAX_TAPS
    assert journey.typed_fields <= MAX_TYPED_FIELDS
    assert elapsed <= MAX_SECONDS
    assert person <= MAX_SECONDS
    assert not policy_errors

    # every first step is done: the overview has no checklist left
    page.goto(live_server.url + reverse("members:dashboard"))
    assert page.locator("#first-run").count() == 0
    no_horizontal_scroll = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()
    assert no_horizontal_scroll


def test_the_address_is_checked_as_it_is_typed_and_a_suggestion_is_one_tap(live_server, chromium):
    ShopFactory(slug="tea-house")
    member = MemberFactory()
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server.url + reverse("login"))
    page.get_by_label("Email or phone").fill(member.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{reverse('members:dashboard')}")

    # the overview's first card opens the shop
    first_card = page.locator("main .card, .card").first
    assert first_card.get_attribute("id") == "first-run"
    first_card.get_by_role("link", name="Open my free shop").click()
    page.wait_for_url(f"**{reverse('members:my_shop')}")
    address = page.get_by_label("Shop address", exact=True)
    status = page.locator("#address-check")
    assert status.get_attribute("aria-live") == "polite"

    address.fill("")
    address.press_sequentially("tea-house", delay=20)
    page.locator("#address-check.is-refused", has_text="This address is taken; pick another.").wait_for()
    page.get_by_role("button", name="Use it: tea-house-2").click()
    assert address.input_value() == "tea-house-2"
    page.locator("#address-check.is-available", has_text="“tea-house-2” is free").wait_for()

    address.fill("")
    address.press_sequentially("小店", delay=20)
    page.locator("#address-check.is-refused", has_text="A shop address may contain only").wait_for()

    address.fill("tea-house-2")
    page.get_by_role("button", name="Open my shop").click()
    page.wait_for_url(f"**{reverse('members:my_shop_catalogue')}")
    context.close()
    assert Shop.objects.get(owner=member).slug == "tea-house-2"
