"""The shop owner's overview (/dashboard/) and team (/dashboard/team/) pages, and the SVG chart behind the overview.

Figures are checked on small scenarios built for the purpose: clicks as daily link statistics, orders paid through
the sandbox webhook (then moved in time where a test needs another day), commission entries of every status written
directly so each amount is known. The team page's query count is compared between a 10-member and a 10,000-member
downline, bulk-loaded with computed nested-set fields.
"""

import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from commissions.services import policy_publish
from members.selectors import member_dashboard_stats
from payouts.selectors import member_balance
from referrals.models import Member
from referrals.selectors import tree_check
from shops.models import Order, ShareLinkDailyStat
from shops.services import share_link_create
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("members:dashboard")
TEAM = reverse("members:team")
SVG = "{http://www.w3.org/2000/svg}"

# Pinned query counts. Overview: session, user, member (with sponsor) | clicks, orders by day,
# entries by day | shop, direct invitees, pending team | balance (entries, withdrawals). Team: session, user,
# member | policy, pending team, members per level (also the paginator's count), the page of members with their
# sales, my earnings per level and status.
# 11, plus the member lookup of members.decorators.suspended_refused (a suspended member gets the 403 page), which
# the URLconf puts in front of the dashboard because the view looks the member up itself.
# +1: the unread notifications in the header (#22); +1: the first-run steps of a member with a shop, its products
# and whether they shared one, in one query (#23; a member without a shop costs none); +1: the balance's staff
# adjustments (#25)
OVERVIEW_QUERIES = 15
TEAM_QUERIES = 9  # +1: the unread notifications in the header, +1 the earnings by level (#22)


def at_noon(days_ago: int) -> datetime:
    """Noon, local time, `days_ago` days before today: on that calendar day whatever the hour the test runs."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(12)))


def member(name: str, sponsor: Member | None = None) -> Member:
    return MemberFactory(user=UserFactory(first_name=name), sponsor=sponsor)


def sold(shop, days_ago: int = 0, quantity: int = 1, **changes) -> Order:
    """A paid order in `shop` (its owner is the sharer), moved to `days_ago` and changed as given."""
    order = pay_order(place_order(shop, {shop.listings.first().product: quantity}))
    Order.objects.filter(pk=order.pk).update(paid_at=at_noon(days_ago), **changes)
    order.refresh_from_db()
    return order


def entry(beneficiary, order, kind, status, amount: str, days_ago: int = 0, level: int = 1) -> Entry:
    return Entry.objects.create(
        order=order,
        order_line=order.lines.first(),
        beneficiary=beneficiary,
        level=level,
        kind=kind,
        base=Decimal("1.00"),
        rate=Decimal("0.8000"),
        amount=Decimal(amount),
        status=status,
        created_at=at_noon(days_ago),
    )


def clicks(link, days_ago: int, count: int, visitors: int) -> None:
    ShareLinkDailyStat.objects.create(
        link=link, day=timezone.localdate() - timedelta(days=days_ago), clicks=count, unique_visitors=visitors
    )


def svg_of(page: str) -> ET.Element:
    match = re.search(r'<svg [^>]*id="daily-chart".*?</svg>', page, re.DOTALL)
    assert match, "no chart on the page"
    return parse_svg(match.group(0))


def parse_svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - markup our own code wrote: parsing it is the test


@pytest.fixture
def product():
    return ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.1000"), stock=1000)


@pytest.fixture
def overview(product):
    """Me and a stranger, each with a shop, a link, clicks, orders and ledger entries: only mine may show."""
    me = member("Meiling")
    shop = shop_with_products(product, owner=me)
    link = share_link_create(owner=me)
    clicks(link, 0, 10, 4)
    clicks(link, 3, 20, 6)
    clicks(link, 10, 30, 10)
    clicks(link, 40, 1000, 500)  # outside the 30 days

    today = sold(shop)
    partly_refunded = sold(shop, refunded_total=Decimal("1.00"))
    this_week = sold(shop, days_ago=5)
    this_month = sold(shop, days_ago=20)
    sold(shop, status=Order.Status.REFUNDED, refunded_total=Decimal("10.00"))  # refunded in full: no sale
    place_order(shop)  # never paid: no sale
    old = sold(shop, days_ago=45)

    entry(me, today, Entry.Kind.COMMISSION, Entry.Status.PENDING, "5.00")
    entry(me, partly_refunded, Entry.Kind.COMMISSION, Entry.Status.REVERSED, "1.00")
    entry(me, partly_refunded, Entry.Kind.REVERSAL, Entry.Status.REVERSED, "-1.00")
    entry(me, this_week, Entry.Kind.COMMISSION, Entry.Status.AVAILABLE, "3.00", days_ago=3)
    entry(me, this_week, Entry.Kind.CLAWBACK, Entry.Status.AVAILABLE, "-0.50", days_ago=3)
    entry(me, this_month, Entry.Kind.COMMISSION, Entry.Status.PAID, "2.00", days_ago=20)
    entry(me, old, Entry.Kind.COMMISSION, Entry.Status.AVAILABLE, "7.00", days_ago=40)
    entry(None, today, Entry.Kind.PLATFORM, Entry.Status.PENDING, "0.20", level=0)  # the platform's, not mine

    stranger = member("Stranger")
    their_shop = shop_with_products(ProductFactory(price=Decimal("99.00")), owner=stranger)
    their_link = share_link_create(owner=stranger)
    clicks(their_link, 0, 900, 300)
    theirs = sold(their_shop)
    entry(stranger, theirs, Entry.Kind.COMMISSION, Entry.Status.PENDING, "77.00")
    entry(stranger, theirs, Entry.Kind.COMMISSION, Entry.Status.AVAILABLE, "66.00", level=2)
    # The stranger also earns on an order of mine (as if they were my sponsor): still not my money.
    entry(stranger, today, Entry.Kind.COMMISSION, Entry.Status.PENDING, "0.40", level=2)
    return me, stranger


# --- Access ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, TEAM, TEAM + "?level=2"])
def test_both_pages_send_a_signed_out_visitor_to_log_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url", [DASHBOARD, TEAM])
def test_both_pages_send_a_user_who_is_not_a_member_to_join(client, url):
    client.force_login(UserFactory())

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == reverse("members:join")


# --- Overview ------------------------------------------------------------------------------------------------


def test_overview_figures_are_the_members_own(overview):
    me, _stranger = overview

    stats = member_dashboard_stats(me, timezone.localdate())

    balance = member_balance(me)
    assert (balance.pending, balance.withdrawable, balance.paid_out, balance.clawed_back) == (
        Decimal("5.00"),
        Decimal("11.50"),  # 3.00 + 7.00 + 2.00 released, less the 0.50 clawed back; no withdrawal
        Decimal("0.00"),
        Decimal("0.50"),
    )
    assert [(p.days, p.clicks, p.unique_visitors, p.orders, p.sales) for p in stats.periods] == [
        (1, 10, 4, 2, Decimal("19.00")),  # 10.00 + 10.00 less 1.00 refunded
        (7, 30, 10, 3, Decimal("29.00")),
        (30, 60, 20, 4, Decimal("39.00")),
    ]
    assert [p.conversion_percent for p in stats.periods] == [Decimal("50.0"), Decimal("30.0"), Decimal("20.0")]


def test_overview_gives_every_one_of_30_days_with_its_orders_and_net_earnings(overview):
    me, _stranger = overview
    today = timezone.localdate()

    daily = member_dashboard_stats(me, today).daily

    assert [day.day for day in daily] == [today - timedelta(days=29 - n) for n in range(30)]
    busy = {day.day: (day.orders, day.earnings) for day in daily if day.orders or day.earnings}
    assert busy == {
        today: (2, Decimal("5.00")),  # 5.00 pending + 1.00 reversed - 1.00 reversal; the platform's 0.20 is not mine
        today - timedelta(days=3): (0, Decimal("2.50")),  # 3.00 less a 0.50 clawback
        today - timedelta(days=5): (1, Decimal("0.00")),
        today - timedelta(days=20): (1, Decimal("2.00")),
    }


def test_overview_with_nothing_yet_shows_zeros_and_no_conversion(client):
    me = member("Newcomer")
    client.force_login(me.user)

    stats = member_dashboard_stats(me, timezone.localdate())
    page = client.get(DASHBOARD).content.decode()

    assert [(p.clicks, p.orders, p.sales, p.conversion_percent) for p in stats.periods] == [
        (0, 0, Decimal("0.00"), None)
    ] * 3
    assert sum(day.earnings for day in stats.daily) == Decimal("0.00")
    assert svg_of(page).get("viewBox") == "0 0 320 190"


def test_overview_page_shows_my_figures_and_none_of_the_strangers(client, overview):
    me, stranger = overview
    client.force_login(me.user)

    page = client.get(DASHBOARD).content.decode()

    assert re.search(r'id="balance-pending"><b>¥5.00</b>', page)
    assert re.search(r'id="balance-available"><b>¥11.50</b>', page)
    assert re.search(r'id="balance-paid-out"><b>¥0.00</b>', page)
    assert re.search(r'id="balance-clawed-back"><b>¥0.50</b>', page)
    sales_row = re.search(r"Sales</th>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td>(.*?)</td>", sales_row) == ["¥19.00", "¥29.00", "¥39.00"]
    conversion_row = re.search(r"Conversion</th>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td>(.*?)</td>", conversion_row) == ["50.0%", "30.0%", "20.0%"]
    for theirs in ("77.00", "66.00", "99.00", "900", "Stranger"):
        assert theirs not in page
    # what the page kept: the invite link and its QR codes, the shop
    assert f"/join/{me.invite_code}/" in page
    assert reverse("members:invite_qr", args=["png"]) in page
    assert reverse("members:invite_qr", args=["svg"]) in page
    assert reverse("shops:shop_home", args=[me.shop.slug]) in page
    assert reverse("members:team") in page


def test_overview_chart_is_well_formed_svg_with_a_bar_per_day_and_an_earnings_line(client, overview):
    me, _stranger = overview
    client.force_login(me.user)

    chart = svg_of(client.get(DASHBOARD).content.decode())

    assert chart.tag == f"{SVG}svg"
    assert chart.get("viewBox") == "0 0 320 190" and chart.get("width") == "100%"
    assert chart.get("role") == "img"
    assert chart.find(f"{SVG}title").text == "Daily earnings and orders, last 30 days"
    bars = chart.findall(f"{SVG}g/{SVG}rect")
    assert len(bars) == 30
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[-1] == max(heights) > 0  # today: 2 orders, the most
    assert heights[-6] == heights[-21] == heights[-1] / 2  # one order each
    assert heights.count(0) == 27
    assert bars[-1].find(f"{SVG}title").text.endswith(": Orders 2, Earnings ¥5.00")
    points = chart.find(f"{SVG}polyline").get("points").split()
    assert len(points) == 30
    assert min(points, key=lambda p: float(p.split(",")[1])) == points[-1]  # today's 5.00 is the highest point


def test_overview_query_count_is_pinned_and_does_not_grow_with_orders_and_days(
    client, overview, django_assert_max_num_queries
):
    me, _stranger = overview
    member("Invitee", sponsor=me)  # direct invitees are counted (a member without any costs no query)
    client.force_login(me.user)
    with CaptureQueriesContext(connection) as before:
        client.get(DASHBOARD)
    shop = me.shop
    for days_ago in range(0, 30, 2):
        order = sold(shop, days_ago=days_ago)
        entry(me, order, Entry.Kind.COMMISSION, Entry.Status.PENDING, "1.00", days_ago=days_ago)

    with django_assert_max_num_queries(OVERVIEW_QUERIES) as after:
        response = client.get(DASHBOARD)

    assert response.status_code == 200
    assert len(before) == len(after) == OVERVIEW_QUERIES


# --- Team ----------------------------------------------------------------------------------------------------


@pytest.fixture
def team(product):
    """root ← me ← (anna ← (alan ← arthur), bella); root ← cousin; a stranger elsewhere.

    Anna sells this month (one order partly refunded) and sold last month; bella's only order was refunded.
    """
    root = member("Rootperson")
    me = member("Meiling", sponsor=root)
    anna = member("Annaxx", sponsor=me)
    bella = member("Bellaxx", sponsor=me)
    alan = member("Alanxx", sponsor=anna)
    arthur = member("Arthurxx", sponsor=alan)
    cousin = member("Cousinxx", sponsor=root)
    stranger = member("Strangerxx")

    annas_shop = shop_with_products(product, owner=anna)
    month_start = timezone.make_aware(datetime.combine(timezone.localdate().replace(day=1), time.min))
    sold(annas_shop, quantity=2)  # 20.00
    sold(annas_shop, refunded_total=Decimal("3.00"))  # 7.00
    Order.objects.filter(pk=sold(annas_shop, quantity=5).pk).update(paid_at=month_start - timedelta(hours=1))
    sold(shop_with_products(product, owner=bella), status=Order.Status.REFUNDED, refunded_total=Decimal("10.00"))
    sold(shop_with_products(product, owner=cousin), quantity=4)
    sold(shop_with_products(product, owner=stranger), quantity=6)
    return {"me": me, "anna": anna, "bella": bella, "alan": alan, "arthur": arthur, "cousin": cousin, "root": root}


def listed(response) -> list[tuple[str, Decimal]]:
    return [(teammate.user.first_name, teammate.sales) for teammate in response.context["page"]]


def test_team_page_lists_my_direct_invitees_with_this_months_sales(client, team):
    client.force_login(team["me"].user)

    response = client.get(TEAM)
    page = response.content.decode()

    assert response.status_code == 200
    assert listed(response) == [("Annaxx", Decimal("27.00")), ("Bellaxx", Decimal("0.00"))]
    assert "¥27.00" in page
    assert "Your sponsor: Rootperson" in page
    assert re.search(r'id="team-size"><b>4</b>', page)
    assert re.search(r'id="direct-count"><b>2</b>', page)
    assert f"/join/{team['me'].invite_code}/" in page
    assert f'src="{reverse("members:invite_qr", args=["svg"])}"' in page
    joined = team["anna"].joined_at.astimezone(timezone.get_current_timezone())
    assert f"Joined {joined:%m/%d/%Y}" in page


def test_team_page_shows_each_paid_level_and_never_anyone_outside_my_downline(client, team):
    # Three paid levels, the sharer included: sales of my levels 1 and 2 can pay me, level 3's cannot.
    policy_publish(actor=None, max_levels=3, note="three levels")
    client.force_login(team["me"].user)

    level_2 = client.get(TEAM + "?level=2")
    pages = [client.get(TEAM).content.decode(), level_2.content.decode()]

    assert listed(level_2) == [("Alanxx", Decimal("0.00"))]
    for page in pages:
        for outsider in ("Cousinxx", "Strangerxx", "Arthurxx"):  # arthur is level 3: beyond what the policy pays
            assert outsider not in page
        assert "Level 1 (2)" in page and "Level 2 (1)" in page and "Level 3" not in page
    assert 'aria-current="page">Level 2 (1)' in pages[1]


@pytest.mark.parametrize("level", ["2", "3", "0", "-1", "abc", "99999999999999999999"])
def test_team_page_refuses_a_level_the_policy_does_not_pay(client, team, level):
    # Two paid levels, the sharer included: only my direct invitees' sales pay me.
    policy_publish(actor=None, max_levels=2, note="two levels")
    client.force_login(team["me"].user)

    response = client.get(TEAM, {"level": level})

    assert response.status_code == 404
    assert "Arthurxx" not in response.content.decode()


def test_team_page_follows_the_policy_in_force(client, team):
    client.force_login(team["me"].user)
    policy_publish(actor=None, max_levels=2, note="two levels")
    refused = client.get(TEAM, {"level": "2"})
    policy_publish(actor=None, max_levels=3, note="three levels")

    response = client.get(TEAM, {"level": "2"})

    assert refused.status_code == 404
    assert response.status_code == 200
    assert listed(response) == [("Alanxx", Decimal("0.00"))]
    assert client.get(TEAM, {"level": "3"}).status_code == 404  # never: 3 levels below me would be a 4th paid level


def test_a_member_deep_in_the_tree_sees_only_their_own_downline(client, team):
    client.force_login(team["anna"].user)

    response = client.get(TEAM)
    page = response.content.decode()

    assert listed(response) == [("Alanxx", Decimal("0.00"))]
    assert "Your sponsor: Meiling" in page
    assert "Bellaxx" not in page and "Cousinxx" not in page


# --- Team: size and speed --------------------------------------------------------------------------------------


def grow_downline(root: Member, children: int, grandchildren: int, tag: str) -> list[Member]:
    """Bulk-load `children` direct invitees under `root`, each with `grandchildren` of their own, setting the
    nested-set fields as django-mptt would (the way bench/tree.py loads); returns the direct invitees."""
    assert root.is_root_node() and root.is_leaf_node()
    total = children * (1 + grandchildren)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(email=f"{tag}{n}@team.invalid", password="!", first_name=f"{tag}{n}") for n in range(total)]
    )
    user_ids = iter(user.pk for user in users)
    common = {"tree_id": root.tree_id, "status": Member.Status.ACTIVE, "join_source": Member.JoinSource.INVITE}
    direct, below, position = [], [], root.lft + 1
    for n in range(children):
        child = Member(
            user_id=next(user_ids),
            parent=root,
            invite_code=f"{tag.upper()}{n:09d}",
            lft=position,
            level=root.level + 1,
            **common,
        )
        position += 1
        for m in range(grandchildren):
            below.append(
                Member(
                    user_id=next(user_ids),
                    invite_code=f"{tag.upper()}{n:05d}X{m:05d}",
                    lft=position,
                    rght=position + 1,
                    level=root.level + 2,
                    **common,
                )
            )
            position += 2
        child.rght = position
        position += 1
        direct.append(child)
    Member.objects.bulk_create(direct, batch_size=2000)
    for index, grandchild in enumerate(below):
        grandchild.parent_id = direct[index // grandchildren].pk
    Member.objects.bulk_create(below, batch_size=2000)
    Member.objects.filter(pk=root.pk).update(rght=position)
    root.refresh_from_db()
    return direct


def test_team_page_makes_the_same_few_queries_for_10_or_10000_members(client, product, django_assert_max_num_queries):
    small, big = member("Small"), member("Big")
    grow_downline(small, children=2, grandchildren=4, tag="s")
    big_direct = grow_downline(big, children=100, grandchildren=99, tag="b")
    assert tree_check().is_valid
    policy_publish(actor=None, max_levels=3, note="three levels: the team page shows levels 1 and 2")
    for teammate in big_direct[:3]:  # some sales on the first page
        sold(shop_with_products(product, owner=teammate))

    counts = {}
    for owner in (small, big):
        client.force_login(owner.user)
        for query in ({}, {"level": "2"}, {"level": "2", "page": "7"}):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(TEAM, query)
            assert response.status_code == 200
            counts[owner.user.first_name, tuple(query.items())] = len(queries)

    with django_assert_max_num_queries(TEAM_QUERIES):
        response = client.get(TEAM, {"level": "2", "page": "100"})

    assert set(counts.values()) == {TEAM_QUERIES}
    assert response.context["page"].number == 100
    assert response.context["page"].paginator.count == 9900
    assert len(response.context["page"].object_list) == 50
    assert re.search(r'id="team-size"><b>10000</b>', response.content.decode())
    first_page = client.get(TEAM)
    assert [sales for _name, sales in listed(first_page)[:4]] == [Decimal("10.00")] * 3 + [Decimal("0.00")]


@pytest.mark.parametrize("page_number", ["abc", "0", "-3", "999", ""])
def test_team_page_survives_bad_page_numbers(client, page_number):
    me = member("Pager")
    grow_downline(me, children=60, grandchildren=0, tag="p")
    client.force_login(me.user)

    response = client.get(TEAM, {"page": page_number})

    assert response.status_code == 200
    assert response.context["page"].number in (1, 2)
    assert len(response.context["page"].object_list) in (50, 10)


# --- Phone width ---------------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", [DASHBOARD, TEAM])
def test_pages_fit_a_375_px_phone_without_sideways_scrolling(live_server, client, path, monkeypatch, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements.txt)")
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        pytest.skip(f"needs Chromium at {chromium}: apt-get install chromium")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # given: long names and big amounts, the widest the figures get
    me = member("Maximiliana-Konstantinopolous")
    shop = shop_with_products(ProductFactory(price=Decimal("99999.99"), stock=100), owner=me)
    link = share_link_create(owner=me)
    clicks(link, 0, 1234567, 765432)
    sold(shop, quantity=9)
    invitee = member("Bartholomew-Alexandros-Wolfeschlegel", sponsor=me)
    sold(shop_with_products(ProductFactory(price=Decimal("99999.99"), stock=100), owner=invitee), quantity=9)
    client.force_login(me.user)
    session = client.cookies["sessionid"].value

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        context = browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=1)
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = context.new_page()
        page.goto(live_server.url + path)
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        title = page.title()
        browser.close()

    assert title in ("Dashboard", "My team")
    assert widths[0] <= widths[1] == 375
