import pytest

from referrals.models import Member
from referrals.selectors import member_ancestor_ids, member_upline
from tests.factories import make_chain

pytestmark = pytest.mark.django_db


def test_upline_is_nearest_first_and_one_query(django_assert_num_queries):
    chain = make_chain(5)  # chain[0] is the root, chain[4] the newest

    with django_assert_num_queries(1):
        upline = member_upline(chain[4], levels=3)

    assert [m.pk for m in upline] == [chain[3].pk, chain[2].pk, chain[1].pk]
    assert [m.upline_depth for m in upline] == [1, 2, 3]


def test_upline_stops_at_the_root():
    chain = make_chain(3)

    assert [m.pk for m in member_upline(chain[2].pk, levels=10)] == [chain[1].pk, chain[0].pk]
    assert member_upline(chain[0], levels=3) == []
    assert member_upline(chain[2], levels=0) == []


def test_upline_follows_parent_links_even_when_nested_sets_are_wrong():
    chain = make_chain(4)
    Member.objects.update(lft=0, rght=0, level=0, tree_id=99)  # wreck the derived fields

    assert [m.pk for m in member_upline(chain[3], levels=3)] == [chain[2].pk, chain[1].pk, chain[0].pk]


def test_ancestor_ids_terminates_on_a_corrupt_cycle():
    a, b, c = make_chain(3)
    Member.objects.filter(pk=a.pk).update(parent=c)  # a -> c -> b -> a, only possible by bypassing services

    assert member_ancestor_ids(c) == {a.pk, b.pk, c.pk}
