"""The ledger reads behind the team page and the leaderboards (commissions/selectors.py): a member's earnings per
commission level and status, and the standings of sales and earnings over a period (cached).

Entries are written by the real split (orders paid through the sandbox webhook, refunds through the refund service)
where the amounts matter, and directly where a test only needs a known amount at a known time.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commissions.models import CommissionEntry
from commissions.selectors import (
    LEADERBOARD_EARNINGS,
    LEADERBOARD_SALES,
    LevelEarnings,
    Standing,
    earnings_by_beneficiary,
    leaderboard_standings,
    member_earnings_by_level,
    member_ledger_totals,
)
from commissions.services import plan_activate, plan_create, policy_publish
from referrals.models import Member
from referrals.services import member_set_status
from shops.selectors import sales_by_sharer
from shops.services import order_refund
from tests.commissions.helpers import entry_at
from tests.factories import MemberFactory, ProductFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
Entry = CommissionEntry
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def three_levels(db):
    """A three-level policy and a 50/30/20 plan in force."""
    policy_publish(actor=None, max_levels=3, note="three levels")
    plan_activate(
        plan=plan_create(actor=None, name="50/30/20", rates=(D("0.5000"), D("0.3000"), D("0.2000"))), actor=None
    )


def paid(shop, product, quantity, capture):
    with capture(execute=True):
        return pay_order(place_order(shop, {product: quantity}))


@pytest.fixture
def ledger(three_levels, django_capture_on_commit_callbacks):
    """root ← me ← anna ← alan ← arthur, a shop each but root's; a stranger with a shop elsewhere.

    Sales at 10 % of 100.00 a unit (pool 10.00 a unit): mine 1, anna 2 (one refunded before release), alan 3, arthur
    4 (four levels below me: pays nobody in my name), the stranger 5.
    """
    root = MemberFactory()
    me = MemberFactory(sponsor=root)
    anna = MemberFactory(sponsor=me)
    alan = MemberFactory(sponsor=anna)
    arthur = MemberFactory(sponsor=alan)
    stranger = MemberFactory()
    product = ProductFactory(price=D("100.00"), commission_rate=D("0.1000"), stock=1000)
    shops = {who: shop_with_products(product, owner=who) for who in (me, anna, alan, arthur, stranger)}
    mine = paid(shops[me], product, 1, django_capture_on_commit_callbacks)
    annas = paid(shops[anna], product, 2, django_capture_on_commit_callbacks)
    paid(shops[alan], product, 3, django_capture_on_commit_callbacks)
    paid(shops[arthur], product, 4, django_capture_on_commit_callbacks)
    paid(shops[stranger], product, 5, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=annas, quantities={annas.lines.get().pk: 1}, reason="test")
    # My own sale is released, half of it then labelled paid out (as a payout would): every status has money.
    Entry.objects.filter(order=mine, beneficiary=me).update(status=Entry.Status.AVAILABLE)
    return {"me": me, "anna": anna, "alan": alan, "arthur": arthur, "root": root, "stranger": stranger}


def test_earnings_by_level_follow_the_split_of_each_level_below_me(ledger):
    me = ledger["me"]
    # given: my own sale (level 1, 50 % of 10.00) released; anna's (level 2, 30 % of 20.00 = 6.00, less the
    # reversal of the refunded half, 3.00) and alan's (level 3, 20 % of 30.00) pending; arthur's pays me nothing.

    levels = member_earnings_by_level(me, 3)

    assert levels == [
        LevelEarnings(level=1, pending=D("0.00"), available=D("5.00"), paid=D("0.00")),
        LevelEarnings(level=2, pending=D("3.00"), available=D("0.00"), paid=D("0.00")),
        LevelEarnings(level=3, pending=D("6.00"), available=D("0.00"), paid=D("0.00")),
    ]
    assert [level.total for level in levels] == [D("5.00"), D("3.00"), D("6.00")]


def test_earnings_by_level_count_each_status_and_only_my_entries(ledger):
    me = ledger["me"]
    level_3 = Entry.objects.filter(beneficiary=me, level=3).get()
    Entry.objects.filter(pk=level_3.pk).update(status=Entry.Status.PAID)

    levels = {row.level: row for row in member_earnings_by_level(me, 3)}
    annas_levels = {row.level: row for row in member_earnings_by_level(ledger["anna"], 3)}

    assert levels[3] == LevelEarnings(level=3, pending=D("0.00"), available=D("0.00"), paid=D("6.00"))
    # anna: her own sale (50 % of 20.00, less 5.00 reversed), alan's (30 % of 30.00), arthur's (20 % of 40.00)
    assert [annas_levels[level].pending for level in (1, 2, 3)] == [D("5.00"), D("9.00"), D("8.00")]


def test_earnings_by_level_add_up_to_the_balance_ledger_totals(ledger):
    for who in ("me", "anna", "alan", "root"):
        member = ledger[who]
        totals = member_ledger_totals(member)

        levels = member_earnings_by_level(member, 3)

        assert sum((row.pending for row in levels), D("0")) == totals.pending
        assert sum((row.available + row.paid for row in levels), D("0")) == totals.released


def test_earnings_by_level_list_every_level_in_force_and_keep_levels_paid_under_an_older_policy(ledger):
    # given: the policy now pays one level; I still hold level 2 and 3 entries from when it paid three
    me = ledger["me"]
    newcomer = MemberFactory()

    mine = member_earnings_by_level(me, 1)
    theirs = member_earnings_by_level(newcomer, 2)

    assert [row.level for row in mine] == [1, 2, 3]  # nothing hidden: the money is still mine
    assert theirs == [
        LevelEarnings(level=1, pending=D("0.00"), available=D("0.00"), paid=D("0.00")),
        LevelEarnings(level=2, pending=D("0.00"), available=D("0.00"), paid=D("0.00")),
    ]


def test_earnings_by_level_is_one_query(ledger):
    with CaptureQueriesContext(connection) as queries:
        member_earnings_by_level(ledger["me"], 3)

    assert len(queries) == 1


# --- Leaderboards --------------------------------------------------------------------------------------------


WEEK = (datetime(2026, 11, 30, tzinfo=SHANGHAI), datetime(2026, 12, 7, tzinfo=SHANGHAI))


entry = entry_at


def test_earnings_standings_rank_by_amount_with_shared_ranks_and_leave_out_nothing_earned(db):
    a, b, c, d, e = (MemberFactory() for _ in range(5))
    inside = WEEK[0] + timedelta(days=2)
    entry(a, "5.00", inside)
    entry(b, "9.00", inside)
    entry(b, "-1.00", inside, kind=Entry.Kind.REVERSAL)  # b: 8.00
    entry(c, "8.00", inside)  # c ties with b
    entry(d, "2.00", inside)
    entry(d, "-2.00", inside, kind=Entry.Kind.CLAWBACK)  # d: nothing, not ranked
    entry(None, "50.00", inside, kind=Entry.Kind.PLATFORM)  # the platform's remainder is nobody's
    entry(e, "99.00", WEEK[0] - timedelta(seconds=1))  # before the week

    standings = leaderboard_standings(LEADERBOARD_EARNINGS, *WEEK)

    first, second = sorted((b.pk, c.pk))
    assert standings.top(10) == [
        Standing(rank=1, member_id=first, amount=D("8.00")),
        Standing(rank=1, member_id=second, amount=D("8.00")),
        Standing(rank=3, member_id=a.pk, amount=D("5.00")),
    ]
    assert standings.top(1) == standings.top(10)[:1]
    assert len(standings) == 3
    assert standings.of(a.pk) == Standing(rank=3, member_id=a.pk, amount=D("5.00"))
    assert standings.of(d.pk) is None and standings.of(e.pk) is None


def test_a_suspended_member_is_on_no_board(db, django_capture_on_commit_callbacks):
    suspended, active = MemberFactory(), MemberFactory()
    product = ProductFactory(price=D("10.00"), stock=100)
    for who in (suspended, active):
        paid(shop_with_products(product, owner=who), product, 1, django_capture_on_commit_callbacks)
        entry(who, "1.00", WEEK[0])
    member_set_status(member=suspended, status=Member.Status.SUSPENDED, actor=None, reason="abuse")
    now = datetime.now(SHANGHAI)

    sales = leaderboard_standings(LEADERBOARD_SALES, now - timedelta(days=1), now + timedelta(days=1))
    earnings = leaderboard_standings(LEADERBOARD_EARNINGS, *WEEK)

    assert [standing.member_id for standing in sales.top(5)] == [active.pk]
    assert [standing.member_id for standing in earnings.top(5)] == [active.pk]


def test_a_period_includes_its_first_instant_and_excludes_the_next_periods(db):
    early, late, next_week = MemberFactory(), MemberFactory(), MemberFactory()
    entry(early, "1.00", WEEK[0])  # Monday 00:00 in Shanghai: this week
    entry(late, "2.00", WEEK[1] - timedelta(microseconds=1))  # Sunday 23:59:59.999999
    entry(next_week, "3.00", WEEK[1])  # the next Monday 00:00

    rows = dict(earnings_by_beneficiary(*WEEK))

    assert rows == {early.pk: D("1.00"), late.pk: D("2.00")}


def test_sales_standings_count_paid_shared_orders_net_of_refunds(db, django_capture_on_commit_callbacks):
    seller, refunder, idle = MemberFactory(), MemberFactory(), MemberFactory()
    product = ProductFactory(price=D("10.00"), stock=100)
    shop = shop_with_products(product, owner=seller)
    other = shop_with_products(product, owner=refunder)
    paid(shop, product, 3, django_capture_on_commit_callbacks)  # 30.00
    partly = paid(shop, product, 2, django_capture_on_commit_callbacks)  # 20.00, 10.00 refunded
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=partly, quantities={partly.lines.get().pk: 1}, reason="test")
    place_order(shop, {product: 9})  # never paid
    whole = paid(other, product, 4, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=whole, reason="test")  # refunded in full: no sale
    week = (datetime.now(SHANGHAI) - timedelta(days=1), datetime.now(SHANGHAI) + timedelta(days=1))

    standings = leaderboard_standings(LEADERBOARD_SALES, *week)

    assert dict(sales_by_sharer(*week)) == {seller.pk: D("40.00")}
    assert standings.top(5) == [Standing(rank=1, member_id=seller.pk, amount=D("40.00"))]
    assert standings.of(idle.pk) is None


def test_standings_are_computed_once_then_read_from_the_cache(db):
    member = MemberFactory()
    entry(member, "1.00", WEEK[0] + timedelta(hours=1))
    first = leaderboard_standings(LEADERBOARD_EARNINGS, *WEEK)
    entry(member, "4.00", WEEK[0] + timedelta(hours=2))

    with CaptureQueriesContext(connection) as queries:
        again = leaderboard_standings(LEADERBOARD_EARNINGS, *WEEK)
    other_week = leaderboard_standings(LEADERBOARD_EARNINGS, WEEK[0] - timedelta(days=7), WEEK[0])

    assert len(queries) == 0
    assert again == first and first.of(member.pk).amount == D("1.00")  # up to five minutes behind
    assert len(other_week) == 0  # another period: its own copy


def test_an_unknown_metric_is_refused(db):
    with pytest.raises(ValueError, match="unknown leaderboard metric"):
        leaderboard_standings("headcount", *WEEK)
