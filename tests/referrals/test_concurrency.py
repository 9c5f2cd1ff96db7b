"""Concurrent tree writers on PostgreSQL: real threads, one connection each, released together."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from referrals.models import Member
from referrals.selectors import tree_check
from referrals.services import ReferralError, member_join, member_move
from tests.factories import MemberFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(calls: list[Callable[[], object]]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(call):
        try:
            barrier.wait(timeout=30)
            outcome = call()
            with lock:
                results.append(outcome)
        except BaseException as error:
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results, errors


def assert_tree_sound(expected_members: int) -> None:
    assert Member.objects.count() == expected_members
    report = tree_check()
    assert report.is_valid, report.describe()
    root_tree_ids = list(Member.objects.filter(parent=None).values_list("tree_id", flat=True))
    assert len(root_tree_ids) == len(set(root_tree_ids))


def test_twenty_joins_under_one_sponsor_at_once():
    assert connection.vendor == "postgresql"
    sponsor = MemberFactory()
    users = [UserFactory() for _ in range(20)]

    results, errors = run_together([lambda u=u: member_join(user=u, sponsor=sponsor) for u in users])

    assert errors == []
    assert Member.objects.filter(parent=sponsor).count() == 20
    assert {m.user_id for m in results} == {u.pk for u in users}
    assert Member.objects.get(pk=sponsor.pk).get_descendant_count() == 20
    assert_tree_sound(21)


def test_twenty_joins_under_twenty_sponsors_at_once():
    root = MemberFactory()
    sponsors = [MemberFactory(sponsor=root) for _ in range(4)]
    sponsors += [MemberFactory(sponsor=sponsors[i % 4]) for i in range(16)]
    users = [UserFactory() for _ in range(20)]

    results, errors = run_together(
        [lambda u=u, s=s: member_join(user=u, sponsor=s) for u, s in zip(users, sponsors, strict=True)]
    )

    assert errors == []
    for user, sponsor in zip(users, sponsors, strict=True):
        assert Member.objects.get(user=user).parent_id == sponsor.pk
    assert_tree_sound(41)


def test_ten_roots_created_at_once_get_distinct_tree_ids():
    users = [UserFactory() for _ in range(10)]

    results, errors = run_together([lambda u=u: member_join(user=u) for u in users])

    assert errors == []
    tree_ids = [m.tree_id for m in Member.objects.filter(parent=None)]
    assert len(tree_ids) == 10
    assert len(set(tree_ids)) == 10
    assert_tree_sound(10)


def test_the_same_user_joining_twice_at_once_becomes_one_member():
    sponsor = MemberFactory()
    user = UserFactory()

    results, errors = run_together([lambda: member_join(user=user, sponsor=sponsor) for _ in range(6)])

    assert len(results) == 1
    assert len(errors) == 5
    assert all(isinstance(error, ReferralError) and error.code == "already_member" for error in errors)
    assert_tree_sound(2)


def test_moves_and_joins_at_once_keep_the_tree_valid(staff_user):
    roots = [MemberFactory() for _ in range(3)]
    teams = [[MemberFactory(sponsor=root) for _ in range(3)] for root in roots]
    users = [UserFactory() for _ in range(12)]
    calls = [lambda u=u, i=i: member_join(user=u, sponsor=teams[i % 3][i % 3]) for i, u in enumerate(users)]
    calls += [
        lambda: member_move(member=teams[0][0], new_sponsor=roots[1], actor=staff_user, reason="t"),
        lambda: member_move(member=teams[1][1], new_sponsor=roots[2], actor=staff_user, reason="t"),
        lambda: member_move(member=teams[2][2], new_sponsor=None, actor=staff_user, reason="t"),
    ]

    results, errors = run_together(calls)

    assert errors == []
    assert Member.objects.get(pk=teams[0][0].pk).parent_id == roots[1].pk
    assert Member.objects.get(pk=teams[2][2].pk).parent_id is None
    assert_tree_sound(3 + 9 + 12)
