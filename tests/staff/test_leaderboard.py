"""The back office's leaderboard (/admin/back-office/leaderboard/): the members' standings with every name, for staff
who may look members up; whether each chose to be named to other members."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from referrals.models import Member
from staff.groups import COMPLIANCE, FINANCE, SUPPORT
from tests.commissions.helpers import entry_at
from tests.factories import MemberFactory, UserFactory, shop_with_products

pytestmark = pytest.mark.django_db

URL = reverse("staff:leaderboard")


def earned(who, amount: str) -> None:
    entry_at(who, amount, timezone.now() - timedelta(minutes=1))


@pytest.fixture
def board():
    named = MemberFactory(user=UserFactory(first_name="Namedperson"))
    Member.objects.filter(pk=named.pk).update(is_named_on_leaderboard=True)
    private = MemberFactory(user=UserFactory(first_name="Privateperson"))
    shop_with_products(owner=private, name="Private Corner")
    earned(named, "3.00")
    earned(private, "7.00")
    return named, private


@pytest.mark.parametrize("group", [SUPPORT, FINANCE, COMPLIANCE])
def test_every_back_office_group_sees_the_board_with_every_name(client, board, group):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    named, private = board

    response = client.get(URL, {"by": "earnings", "period": "week"})
    page = response.content.decode()

    assert response.status_code == 200
    assert [(row["standing"].rank, row["member"].pk) for row in response.context["rows"]] == [
        (1, private.pk),
        (2, named.pk),
    ]
    assert "Privateperson" in page and "Private Corner" in page and "Namedperson" in page
    assert reverse("admin:referrals_member_change", args=[private.pk]) in page
    assert "¥7.00" in page
    assert client.get(reverse("admin:index")).content.decode().count(URL) == 1


def test_staff_outside_every_group_and_members_do_not_see_it(client, board):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(URL).status_code == 403
    assert URL not in client.get(reverse("admin:index")).content.decode()

    client.force_login(board[0].user)
    assert client.get(URL).status_code == 302  # to the admin's login


@pytest.mark.parametrize("query", [{"period": "decade"}, {"by": "recruits"}])
def test_an_unknown_board_is_a_404(admin_client, query):
    assert admin_client.get(URL, query).status_code == 404
