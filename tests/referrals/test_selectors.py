from datetime import timedelta

import pytest
from django.utils import timezone

from referrals import selectors
from referrals.models import Member
from referrals.selectors import member_ancestor_ids, member_upline, tree_depth_counts, tree_largest_downlines
from tests.factories import MemberFactory, make_chain

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


# --- The whole tree's statistics (the compliance report, the evidence pack) -----------------------------------------


def test_largest_downlines_count_only_members_who_joined_before_the_cut_off(monkeypatch, django_assert_max_num_queries):
    # given a root whose three members joined before the cut-off, and one whose five joined after it (larger today)
    early = MemberFactory()
    for _ in range(3):
        MemberFactory(sponsor=early)
    late = MemberFactory()
    late_team = [MemberFactory(sponsor=late) for _ in range(5)]
    cut_off = timezone.now() + timedelta(days=1)
    Member.objects.filter(pk__in=[member.pk for member in late_team]).update(joined_at=cut_off + timedelta(days=1))
    monkeypatch.setattr(selectors, "DOWNLINE_CANDIDATES", 1)  # read the candidates one at a time
    # when the largest downline at the cut-off is asked for
    with django_assert_max_num_queries(6):
        largest = tree_largest_downlines(before=cut_off, limit=1)
    # then it is the early root's (3), not the late one's (5 today, 0 at the cut-off); the search stopped once no
    # other member could beat it
    assert [(downline.member_id, downline.size, downline.depth) for downline in largest] == [(early.pk, 3, 1)]
    # and the depths at the cut-off leave the late members out
    assert tree_depth_counts(before=cut_off) == {1: 2, 2: 3}
    # today, the late root's downline is the largest
    assert tree_largest_downlines(before=cut_off + timedelta(days=2), limit=1)[0].member_id == late.pk
