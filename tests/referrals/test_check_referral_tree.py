import pytest
from django.core.management import CommandError, call_command

from referrals.models import Member, TreeEvent
from referrals.selectors import tree_check
from referrals.tasks import tree_check_task
from tests.factories import MemberFactory, make_chain

pytestmark = pytest.mark.django_db


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("check_referral_tree", *args, stdout=out)
    return out.getvalue()


def wreck(member, **fields):
    Member.objects.filter(pk=member.pk).update(**fields)


def test_reports_ok_on_a_valid_tree():
    make_chain(4)

    assert "OK: 4 members" in run()


def test_finds_wrong_fields_prints_them_and_fails():
    root, child, grandchild = make_chain(3)
    wreck(child, rght=99)

    with pytest.raises(CommandError) as failed:
        run()

    assert "1 problem(s)" in str(failed.value)
    assert Member.objects.get(pk=child.pk).rght == 99  # a check changes nothing


def test_fix_rebuilds_from_parent_links_and_is_audited():
    root, child, grandchild = make_chain(3)
    other = MemberFactory()
    wreck(child, lft=40, rght=41, level=7)
    wreck(grandchild, tree_id=other.tree_id)

    output = run("--fix")

    assert "Fixed: rewrote 2 member(s)" in output
    assert tree_check().is_valid
    child.refresh_from_db()
    assert (child.lft, child.rght, child.level) == (2, 5, 1)
    assert TreeEvent.objects.get(kind=TreeEvent.Kind.REPAIR).after == {"members_changed": 2}
    assert "OK" in run()  # and a second run finds nothing, writes nothing
    assert TreeEvent.objects.filter(kind=TreeEvent.Kind.REPAIR).count() == 1


def test_fix_after_mptt_fields_are_all_zeroed():
    make_chain(3)
    MemberFactory(sponsor=Member.objects.get(level=0))
    Member.objects.update(lft=0, rght=0, level=0, tree_id=0)

    run("--fix")

    assert tree_check().is_valid


def test_fix_refuses_a_parent_cycle_and_changes_nothing():
    a, b, c = make_chain(3)
    wreck(a, parent=c)
    before = list(Member.objects.order_by("pk").values_list("lft", "rght", "tree_id", "level"))

    with pytest.raises(CommandError) as failed:
        run("--fix")

    assert "cycle" in str(failed.value)
    assert list(Member.objects.order_by("pk").values_list("lft", "rght", "tree_id", "level")) == before


def test_nightly_task_counts_problems_and_alerts(caplog):
    root, child = make_chain(2)
    assert tree_check_task() == 0

    wreck(child, level=5)
    with caplog.at_level("ERROR", logger="referrals.tree"):
        problems = tree_check_task()

    assert problems == 1
    assert "check_referral_tree --fix" in caplog.text
