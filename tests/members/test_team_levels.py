"""The team page's earnings by level (/dashboard/team/): one row per commission level the policy in force pays me
(my own sales, then each level of my downline), with that level's member count and my pending, available and paid
earnings from it, exact against a tree and ledger built through the real join and split services."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from commissions.models import CommissionEntry as Entry
from commissions.services import plan_activate, plan_create, policy_publish
from shops.services import order_refund
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
TEAM = reverse("members:team")


def member(name, sponsor=None):
    return MemberFactory(user=UserFactory(first_name=name), sponsor=sponsor)


def level_row(page: str, level: int | str) -> str:
    match = re.search(rf'<li id="level-earnings-{level}">(.*?)</li>', page, re.DOTALL)
    assert match, f"no row for level {level}"
    return re.sub(r"\s+", " ", match.group(1))


def amounts(row: str) -> list[str]:
    """The row's pending, available and paid amounts, as shown."""
    return re.findall(r"<dd>(.*?)</dd>", row)


@pytest.fixture
def tree(django_capture_on_commit_callbacks):
    """root ← me ← (anna ← (alan ← arthur), bella); a stranger; three paid levels at 50/30/20.

    Sales at 10 % commission of 100.00 a unit: mine 1, anna 2 (one refunded), bella 1, alan 3, arthur 4, the
    stranger 5, root 6.
    """
    policy_publish(actor=None, max_levels=3, note="three levels")
    plan_activate(
        plan=plan_create(actor=None, name="50/30/20", rates=(D("0.5000"), D("0.3000"), D("0.2000"))), actor=None
    )
    root = member("Rootperson")
    me = member("Meiling", root)
    anna, bella = member("Annaxx", me), member("Bellaxx", me)
    alan = member("Alanxx", anna)
    arthur = member("Arthurxx", alan)
    stranger = member("Strangerxx")
    product = ProductFactory(price=D("100.00"), commission_rate=D("0.1000"), stock=1000)
    orders = {}
    for who, quantity in ((me, 1), (anna, 2), (bella, 1), (alan, 3), (arthur, 4), (stranger, 5), (root, 6)):
        with django_capture_on_commit_callbacks(execute=True):
            orders[who.pk] = pay_order(place_order(shop_with_products(product, owner=who), {product: quantity}))
    annas = orders[anna.pk]
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=annas, quantities={annas.lines.get().pk: 1}, reason="test")
    Entry.objects.filter(order=orders[me.pk], beneficiary=me).update(status=Entry.Status.AVAILABLE)
    Entry.objects.filter(order=orders[bella.pk], beneficiary=me).update(status=Entry.Status.PAID)
    return {"me": me, "anna": anna, "root": root, "stranger": stranger}


def test_team_page_shows_each_level_the_policy_pays_me_with_exact_counts_and_earnings(client, tree):
    client.force_login(tree["me"].user)

    page = client.get(TEAM).content.decode()

    # level 1: my sale, 50 % of 10.00, released
    assert "Your own sales" in level_row(page, 1)
    assert amounts(level_row(page, 1)) == ["¥0.00", "¥5.00", "¥0.00"]
    # level 2: anna's and bella's sales (my level 1, two members): 30 % of 20.00 less the refunded half pending,
    # 30 % of 10.00 paid out
    assert "Sales of your level 1" in level_row(page, 2) and "(2 members)" in level_row(page, 2)
    assert amounts(level_row(page, 2)) == ["¥3.00", "¥0.00", "¥3.00"]
    # level 3: alan's (my level 2, one member): 20 % of 30.00; arthur, a level further, pays me nothing
    assert "Sales of your level 2" in level_row(page, 3) and "(1 member)" in level_row(page, 3)
    assert amounts(level_row(page, 3)) == ["¥6.00", "¥0.00", "¥0.00"]
    assert 'id="level-earnings-4"' not in page
    assert amounts(level_row(page, "total")) == ["¥9.00", "¥5.00", "¥3.00"]


def test_team_page_levels_follow_the_policy_in_force(client, tree):
    plan_activate(plan=plan_create(actor=None, name="80/20", rates=(D("0.8000"), D("0.2000"))), actor=None)
    policy_publish(actor=None, max_levels=2, note="two levels")
    newcomer = member("Newcomer", tree["stranger"])
    client.force_login(newcomer.user)

    page = client.get(TEAM).content.decode()

    assert [int(n) for n in re.findall(r'<li id="level-earnings-(\d)">', page)] == [1, 2]
    assert amounts(level_row(page, 2)) == ["¥0.00"] * 3
    assert "pays you on 2 levels" in page


def test_team_page_keeps_earnings_of_a_level_an_older_policy_paid(client, tree):
    # given: the policy now pays one level (my own sales); my level 2 and 3 earnings stay mine and stay shown
    plan_activate(plan=plan_create(actor=None, name="sharer only", rates=(D("1.0000"),)), actor=None)
    policy_publish(actor=None, max_levels=1, note="direct sales only")
    client.force_login(tree["me"].user)

    page = client.get(TEAM).content.decode()

    assert amounts(level_row(page, 3)) == ["¥6.00", "¥0.00", "¥0.00"]
    assert amounts(level_row(page, "total")) == ["¥9.00", "¥5.00", "¥3.00"]
    assert "pays you on your own sales only" in page


def test_team_page_earnings_are_only_mine(client, tree):
    # root earns on my sale (level 2) and on my team's (level 3): none of it is on my page, none of mine on theirs
    client.force_login(tree["root"].user)
    roots = client.get(TEAM).content.decode()
    client.force_login(tree["stranger"].user)
    strangers = client.get(TEAM).content.decode()

    # root: own sale 50 % of 60.00; my sale (their level 1) 30 % of 10.00; anna's 20 % of 20.00 less the refunded
    # half, and bella's 20 % of 10.00 (their level 2)
    assert amounts(level_row(roots, 1)) == ["¥30.00", "¥0.00", "¥0.00"]
    assert amounts(level_row(roots, 2)) == ["¥3.00", "¥0.00", "¥0.00"]
    assert amounts(level_row(roots, 3)) == ["¥4.00", "¥0.00", "¥0.00"]
    assert amounts(level_row(strangers, "total")) == ["¥25.00", "¥0.00", "¥0.00"]
    assert "Meiling" not in strangers and "Annaxx" not in strangers
