import pytest

from referrals.models import Member, TreeEvent
from referrals.selectors import tree_check
from referrals.services import ReferralError, member_delete, member_join, member_move, member_set_status
from tests.factories import MemberFactory, UserFactory, make_chain

pytestmark = pytest.mark.django_db


def tree_state():
    return list(Member.objects.order_by("pk").values_list("pk", "parent_id", "tree_id", "lft", "rght", "level"))


def test_each_member_gets_a_distinct_unguessable_invite_code():
    members = [MemberFactory() for _ in range(30)]

    codes = {m.invite_code for m in members}

    assert len(codes) == 30
    assert all(len(code) == 8 and code.isalnum() and code.isupper() for code in codes)


def test_join_refuses_a_user_who_is_already_a_member():
    member = MemberFactory()
    before = tree_state()

    with pytest.raises(ReferralError) as refused:
        member_join(user=member.user, sponsor=MemberFactory())

    assert refused.value.code == "already_member"
    assert tree_state()[: len(before)] == before
    assert Member.objects.filter(user=member.user).count() == 1


def test_join_refuses_a_suspended_sponsor(staff_user):
    sponsor = MemberFactory()
    member_set_status(member=sponsor, status=Member.Status.SUSPENDED, actor=staff_user)
    user = UserFactory()

    with pytest.raises(ReferralError) as refused:
        member_join(user=user, sponsor=sponsor)

    assert refused.value.code == "sponsor_inactive"
    assert not Member.objects.filter(user=user).exists()


def test_move_under_own_downline_is_refused_and_changes_nothing(staff_user):
    root, child, grandchild = make_chain(3)
    before = tree_state()

    with pytest.raises(ReferralError) as refused:
        member_move(member=child, new_sponsor=grandchild, actor=staff_user, reason="typo")

    assert refused.value.code == "cycle"
    assert tree_state() == before
    assert not TreeEvent.objects.filter(kind=TreeEvent.Kind.MOVE).exists()


def test_move_under_itself_is_refused(staff_user):
    member = MemberFactory()
    before = tree_state()

    with pytest.raises(ReferralError):
        member_move(member=member, new_sponsor=member, actor=staff_user, reason="typo")

    assert tree_state() == before


def test_move_takes_the_whole_team_writes_an_audit_row_and_keeps_the_tree_valid(staff_user):
    root_a, child, grandchild = make_chain(3)
    root_b = MemberFactory()
    MemberFactory(sponsor=root_a)

    moved = member_move(member=child, new_sponsor=root_b, actor=staff_user, reason="support ticket 42")

    assert moved.parent_id == root_b.pk
    grandchild.refresh_from_db()
    assert grandchild.parent_id == child.pk
    assert grandchild.tree_id == root_b.tree_id
    assert grandchild.level == 2
    assert Member.objects.get(pk=root_b.pk).get_descendant_count() == 2
    assert Member.objects.get(pk=root_a.pk).get_descendant_count() == 1
    event = TreeEvent.objects.get(kind=TreeEvent.Kind.MOVE)
    assert (event.member_id, event.old_parent_id, event.new_parent_id) == (child.pk, root_a.pk, root_b.pk)
    assert event.actor == staff_user
    assert event.reason == "support ticket 42"
    assert event.before == {"parent_id": root_a.pk, "status": "active"}
    assert event.after == {"parent_id": root_b.pk, "status": "active"}
    assert tree_check().is_valid


def test_move_to_no_sponsor_makes_a_new_tree(staff_user):
    root, child, grandchild = make_chain(3)

    member_move(member=child, new_sponsor=None, actor=staff_user, reason="split off")

    child.refresh_from_db()
    assert child.parent_id is None
    assert child.tree_id != root.tree_id
    assert child.get_descendant_count() == 1
    assert tree_check().is_valid


def test_move_needs_a_reason_and_a_change(staff_user):
    root, child = make_chain(2)

    with pytest.raises(ReferralError) as no_reason:
        member_move(member=child, new_sponsor=MemberFactory(), actor=staff_user, reason="  ")
    with pytest.raises(ReferralError) as no_change:
        member_move(member=child, new_sponsor=root, actor=staff_user, reason="again")

    assert no_reason.value.code == "reason_required"
    assert no_change.value.code == "no_change"
    assert not TreeEvent.objects.filter(kind=TreeEvent.Kind.MOVE).exists()


def test_delete_removes_a_member_without_team_and_is_audited(staff_user):
    root, leaf = make_chain(2)

    member_delete(member=leaf, actor=staff_user, reason="asked to leave")

    assert not Member.objects.filter(pk=leaf.pk).exists()
    assert TreeEvent.objects.get(kind=TreeEvent.Kind.DELETE).member_id == leaf.pk
    assert tree_check().is_valid


def test_delete_refuses_a_member_with_a_team(staff_user):
    root, leaf = make_chain(2)
    before = tree_state()

    with pytest.raises(ReferralError) as refused:
        member_delete(member=root, actor=staff_user, reason="no")

    assert refused.value.code == "has_team"
    assert tree_state() == before


def test_status_change_is_audited_and_idempotent(staff_user):
    member = MemberFactory()

    member_set_status(member=member, status=Member.Status.SUSPENDED, actor=staff_user, reason="fraud check")
    member_set_status(member=member, status=Member.Status.SUSPENDED, actor=staff_user, reason="again")

    member.refresh_from_db()
    assert member.status == Member.Status.SUSPENDED
    event = TreeEvent.objects.get(kind=TreeEvent.Kind.STATUS)
    assert event.before["status"] == "active"
    assert event.after["status"] == "suspended"


def test_status_change_refuses_an_unknown_status(staff_user):
    member = MemberFactory()

    with pytest.raises(ReferralError):
        member_set_status(member=member, status="deleted", actor=staff_user)

    member.refresh_from_db()
    assert member.status == Member.Status.ACTIVE


def test_move_under_a_suspended_sponsor_is_refused(staff_user):
    root, child = make_chain(2)
    suspended = MemberFactory()
    member_set_status(member=suspended, status=Member.Status.SUSPENDED, actor=staff_user)

    with pytest.raises(ReferralError) as refused:
        member_move(member=child, new_sponsor=suspended, actor=staff_user, reason="x")

    assert refused.value.code == "sponsor_inactive"
    assert Member.objects.get(pk=child.pk).parent_id == root.pk


def test_default_sponsor_applies_to_self_service_joins_only(settings):
    house = MemberFactory()
    settings.REFERRALS_DEFAULT_SPONSOR_CODE = house.invite_code

    joined = member_join(user=UserFactory())
    staff_root = member_join(user=UserFactory(), source=Member.JoinSource.STAFF, use_default_sponsor=False)

    assert joined.parent_id == house.pk
    assert staff_root.parent_id is None
    assert staff_root.join_source == Member.JoinSource.STAFF


def test_public_name_never_shows_the_full_email():
    named = MemberFactory(user=UserFactory(first_name="Li", last_name="Na"))
    unnamed = MemberFactory(user=UserFactory(first_name="", email="secret.person@example.com"))

    assert named.display_name == "Li Na"
    assert unnamed.display_name == "se***@example.com"
