"""The leaderboard (/dashboard/team/leaderboard/): the top members by sales or earnings this or last week or month,
in the site's time zone (Asia/Shanghai), my own rank, and my choice to be named. Members who did not choose to be
named are anonymised: their name, email and shop never reach the page."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commissions.models import CommissionEntry as Entry
from commissions.selectors import leaderboard_bounds
from members.selectors import LEADERBOARD_SIZE, leaderboard_pseudonym, member_leaderboard
from members.views import leaderboard as leaderboard_views
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import Order
from tests.commissions.helpers import entry_at
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
BOARD = reverse("members:leaderboard")
NAME = reverse("members:leaderboard_name")
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Sunday: this week is Monday 30 November to Sunday 6 December, this month December, last month November.
SUNDAY = date(2026, 12, 6)
# Pinned: session, user, member | standings (sales or earnings, then cached) | the names of the named members on
# the board and mine.
BOARD_QUERIES = 6  # +1: the unread notifications in the header


def member(name, email=None, sponsor=None, *, named=False):
    user = UserFactory(first_name=name, **({"email": email} if email else {}))
    found = MemberFactory(user=user, sponsor=sponsor)
    if named:
        Member.objects.filter(pk=found.pk).update(is_named_on_leaderboard=True)
        found.refresh_from_db()
    return found


def earned(who, amount: str, at: datetime, kind=Entry.Kind.COMMISSION) -> Entry:
    return entry_at(who, amount, at, kind)


def shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def on_sunday(monkeypatch):
    """The page's "today" is SUNDAY (in the site's time zone)."""
    monkeypatch.setattr(leaderboard_views, "timezone", SimpleNamespace(localdate=lambda: SUNDAY))


@pytest.fixture
def board(on_sunday):
    """Anna (named, with a shop) earned 30.00 this week; Bella (not named, with a shop) 50.00; Carl (not named, no
    shop) 10.00 and me 20.00. Last week: a stranger 99.00."""
    anna = member("Annaxx", "anna.named@example.com", named=True)
    shop_with_products(owner=anna, name="Annas Tea Corner")
    bella = member("Bellasecret", "bella.secret@example.com")
    shop_with_products(owner=bella, name="Bellas Hidden Shop")
    carl = member("", "carlhidden@example.com")
    me = member("Meiling", "me@example.com")
    stranger = member("Strangerxx", named=True)
    this_week = shanghai(2026, 12, 2, 12)
    earned(anna, "30.00", this_week)
    earned(bella, "50.00", this_week)
    earned(carl, "10.00", this_week)
    earned(me, "20.00", this_week)
    earned(stranger, "99.00", shanghai(2026, 11, 25, 12))
    return {"anna": anna, "bella": bella, "carl": carl, "me": me, "stranger": stranger}


def rows(page: str) -> list[str]:
    board = re.search(r'<ol class="board" id="board">(.*?)</ol>', page, re.DOTALL).group(1)
    return [re.sub(r"<[^>]+>|\s+", " ", item).split() for item in re.findall(r"<li.*?</li>", board, re.DOTALL)]


def test_the_settings_time_zone_is_shanghai():
    assert settings.TIME_ZONE == "Asia/Shanghai"


def test_board_ranks_named_members_by_name_and_anonymises_everyone_else(client, board):
    client.force_login(board["me"].user)

    page = client.get(BOARD, {"by": "earnings"}).content.decode()

    bella, carl = leaderboard_pseudonym(board["bella"].pk), leaderboard_pseudonym(board["carl"].pk)
    assert rows(page) == [
        ["1", *bella.split(), "¥50.00"],
        ["2", "Annaxx", "Annas", "Tea", "Corner", "¥30.00"],
        ["3", "Meiling", "you", "¥20.00"],
        ["4", *carl.split(), "¥10.00"],
    ]
    assert re.fullmatch(r"Member #\d{5}", bella) and bella != carl
    for private in ("Bellasecret", "bella.secret", "be***", "Bellas Hidden Shop", "carlhidden", "ca***"):
        assert private not in page
    assert "Strangerxx" not in page  # last week's
    assert "No. 3 of 4 members" in page


def test_a_member_who_chooses_to_be_named_appears_by_name_and_can_withdraw(client, board):
    client.force_login(board["bella"].user)

    named = client.post(NAME, {"is_named": "on", "period": "week", "by": "earnings"})
    client.force_login(board["me"].user)
    shown = client.get(BOARD, {"by": "earnings"}).content.decode()
    client.force_login(board["bella"].user)
    client.post(NAME, {"period": "week", "by": "earnings"})
    client.force_login(board["me"].user)
    hidden = client.get(BOARD, {"by": "earnings"}).content.decode()

    assert named.status_code == 302 and named["Location"] == BOARD + "?period=week&by=earnings"
    assert rows(shown)[0] == ["1", "Bellasecret", "Bellas", "Hidden", "Shop", "¥50.00"]
    assert "Bellasecret" not in hidden and "Bellas Hidden Shop" not in hidden
    assert Member.objects.get(pk=board["bella"].pk).is_named_on_leaderboard is False


def test_the_name_setting_only_ever_changes_my_own(client, board):
    client.force_login(board["me"].user)

    response = client.post(NAME, {"is_named": "on", "member": board["bella"].pk, "pk": board["bella"].pk})

    assert response.status_code == 302 and response["Location"] == BOARD
    assert Member.objects.get(pk=board["me"].pk).is_named_on_leaderboard is True
    assert Member.objects.get(pk=board["bella"].pk).is_named_on_leaderboard is False
    assert client.get(NAME).status_code == 405


def test_the_setting_shows_on_the_page_as_it_is(client, board):
    client.force_login(board["anna"].user)
    page = client.get(BOARD).content.decode()
    assert re.search(r'<input type="checkbox" name="is_named"[^>]* checked', page)

    client.force_login(board["me"].user)
    page = client.get(BOARD).content.decode()
    assert re.search(r'<input type="checkbox" name="is_named"', page)
    assert not re.search(r'<input type="checkbox" name="is_named"[^>]* checked', page)


def test_my_rank_is_shown_when_i_am_below_the_top(client, on_sunday):
    me = member("Meiling")
    others = [member(f"Other{n}", named=True) for n in range(LEADERBOARD_SIZE + 2)]
    for n, other in enumerate(others):
        earned(other, f"{100 + n}.00", shanghai(2026, 12, 1, 9))
    earned(me, "1.00", shanghai(2026, 12, 1, 9))
    client.force_login(me.user)

    page = client.get(BOARD, {"by": "earnings"}).content.decode()

    assert len(rows(page)) == LEADERBOARD_SIZE
    assert rows(page)[0] == ["1", f"Other{LEADERBOARD_SIZE + 1}", "¥121.00"]
    assert "Meiling" not in re.search(r'<ol class="board".*?</ol>', page, re.DOTALL).group(0)
    assert re.search(r"No\. 23 of 23 members</b> · ¥1\.00", page)


def test_a_member_with_nothing_in_the_period_is_told_so(client, board):
    client.force_login(board["me"].user)

    page = client.get(BOARD, {"by": "sales"}).content.decode()

    assert "No sales in this period yet" in page
    assert "Nobody is on this board yet." in page


def test_sales_board_ranks_the_shared_orders_of_the_period(client, on_sunday, django_capture_on_commit_callbacks):
    seller = member("Sellerxx", named=True)
    product = ProductFactory(price=D("25.00"), stock=100)
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop_with_products(product, owner=seller), {product: 2}))
    Order.objects.filter(pk=order.pk).update(paid_at=shanghai(2026, 12, 5, 23, 59))
    client.force_login(seller.user)

    this_week = client.get(BOARD, {"by": "sales"}).content.decode()
    last_week = client.get(BOARD, {"by": "sales", "period": "last-week"}).content.decode()

    assert rows(this_week) == [["1", "Sellerxx", "you", *rows(this_week)[0][3:-1], "¥50.00"]]
    assert "Nobody is on this board yet." in last_week


@pytest.mark.parametrize(
    ("period", "first", "until"),
    [
        ("week", shanghai(2026, 11, 30), shanghai(2026, 12, 7)),
        ("last-week", shanghai(2026, 11, 23), shanghai(2026, 11, 30)),
        ("month", shanghai(2026, 12, 1), shanghai(2027, 1, 1)),
        ("last-month", shanghai(2026, 11, 1), shanghai(2026, 12, 1)),
    ],
)
def test_periods_are_calendar_weeks_from_monday_and_months_in_shanghai_time(period, first, until):
    assert leaderboard_bounds(period, SUNDAY) == (first, until)
    assert leaderboard_bounds(period, SUNDAY)[0].utcoffset() == timedelta(hours=8)


def test_an_entry_counts_in_the_week_and_month_of_its_shanghai_date(on_sunday):
    # given: 16:30 UTC on Sunday 29 November is 00:30 on Monday 30 November in Shanghai (this week, last month);
    # 16:30 UTC on 30 November is 00:30 on 1 December (this month); 15:59 UTC on 29 November is still Sunday.
    monday_early, december_early, sunday_late, me = member("A"), member("B"), member("C"), member("Me")
    utc = ZoneInfo("UTC")
    earned(monday_early, "1.00", datetime(2026, 11, 29, 16, 30, tzinfo=utc))
    earned(december_early, "2.00", datetime(2026, 11, 30, 16, 30, tzinfo=utc))
    earned(sunday_late, "4.00", datetime(2026, 11, 29, 15, 59, tzinfo=utc))

    def ranked(period):
        board = member_leaderboard(me, metric="earnings", period=period, today=SUNDAY)
        return sorted(row.amount for row in board.rows)

    assert ranked("week") == [D("1.00"), D("2.00")]
    assert ranked("last-week") == [D("4.00")]
    assert ranked("month") == [D("2.00")]
    assert ranked("last-month") == [D("1.00"), D("4.00")]


@pytest.mark.parametrize("query", [{"period": "year"}, {"by": "headcount"}, {"period": ""}, {"by": "Sales"}])
def test_an_unknown_board_is_a_404(client, board, query):
    client.force_login(board["me"].user)

    assert client.get(BOARD, query).status_code == 404


def test_the_switcher_links_every_period_and_both_boards(client, board):
    client.force_login(board["me"].user)

    page = client.get(BOARD, {"by": "earnings", "period": "month"}).content.decode()

    for period in ("week", "last-week", "month", "last-month"):
        assert f'href="?by=earnings&amp;period={period}"' in page
    assert 'href="?by=sales&amp;period=month"' in page
    assert re.search(r'period=month" aria-current="page">This month<', page)


def test_signed_out_visitors_log_in_and_suspended_members_are_refused(client, board):
    assert client.get(BOARD)["Location"].startswith(reverse("login"))
    member_set_status(member=board["carl"], status=Member.Status.SUSPENDED, actor=None)
    client.force_login(board["carl"].user)

    assert client.get(BOARD).status_code == 403
    assert client.post(NAME, {"is_named": "on"}).status_code == 403
    assert Member.objects.get(pk=board["carl"].pk).is_named_on_leaderboard is False


def test_the_board_makes_the_same_few_queries_for_4_or_100_members(client, board, django_assert_max_num_queries):
    client.force_login(board["me"].user)
    with CaptureQueriesContext(connection) as small:
        client.get(BOARD, {"by": "earnings", "period": "month"})
    for n in range(100):
        earned(member(f"More{n}", named=n % 2 == 0), f"{n + 1}.00", shanghai(2026, 12, 3, 8))
    with CaptureQueriesContext(connection) as big:
        client.get(BOARD, {"by": "earnings", "period": "week"})
    with django_assert_max_num_queries(BOARD_QUERIES - 1):  # the standings from the cache
        response = client.get(BOARD, {"by": "earnings", "period": "week"})

    assert len(small) == len(big) == BOARD_QUERIES
    assert len(response.context["board"].rows) == LEADERBOARD_SIZE
