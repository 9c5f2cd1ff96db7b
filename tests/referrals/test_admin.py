import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from referrals.models import Member, TreeEvent
from referrals.selectors import tree_check
from tests.factories import MemberFactory, UserFactory, make_chain

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:referrals_member_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_changelist_indents_by_level_in_bounded_queries(admin_client, django_assert_max_num_queries):
    chain = make_chain(4)
    for _ in range(20):
        MemberFactory(sponsor=chain[1])

    with django_assert_max_num_queries(10):
        response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    # by a class per level (the CSP refuses style attributes, which django-mptt would write)
    assert page.count('<span class="tree-level-0">') == 1  # the root
    assert page.count('<span class="tree-level-1">') == 1  # level 1
    assert page.count('<span class="tree-level-2">') == 21  # level 2
    assert page.count('<span class="tree-level-3">') == 1  # level 3
    assert "style=" not in page.split('id="result_list"')[1].split("</table>")[0]


def test_changelist_search_by_invite_code_and_email(admin_client):
    target = MemberFactory(user=UserFactory(email="findme@example.com"))
    MemberFactory()

    by_code = admin_client.get(CHANGELIST, {"q": target.invite_code})
    by_email = admin_client.get(CHANGELIST, {"q": "findme@"})

    assert list(by_code.context["cl"].result_list) == [target]
    assert list(by_email.context["cl"].result_list) == [target]


def test_sponsor_is_read_only_on_the_change_form(admin_client):
    root, child = make_chain(2)
    other = MemberFactory()
    url = reverse("admin:referrals_member_change", args=[child.pk])

    admin_client.post(url, {"parent": other.pk, "user": child.user_id})

    child.refresh_from_db()
    assert child.parent_id == root.pk
    assert 'name="parent"' not in admin_client.get(url).content.decode()


def test_adding_a_member_in_admin_goes_through_the_join_service(admin_client, staff_user):
    sponsor = MemberFactory()
    user = UserFactory()

    response = admin_client.post(reverse("admin:referrals_member_add"), {"user": user.pk, "parent": sponsor.pk})

    assert response.status_code == 302
    member = Member.objects.get(user=user)
    assert member.parent_id == sponsor.pk
    assert member.join_source == Member.JoinSource.STAFF
    assert TreeEvent.objects.get(kind=TreeEvent.Kind.JOIN, member=member).actor == staff_user
    assert tree_check().is_valid


def test_adding_an_existing_member_again_is_a_form_error(admin_client):
    member = MemberFactory()

    response = admin_client.post(reverse("admin:referrals_member_add"), {"user": member.user_id, "parent": ""})

    assert response.status_code == 200
    assert "already a member" in response.content.decode()
    assert Member.objects.count() == 1


def test_move_action_asks_for_sponsor_and_reason_then_moves(admin_client):
    root, child = make_chain(2)
    new_root = MemberFactory()
    data = {"action": "move_members", ACTION_CHECKBOX_NAME: [child.pk]}

    form_page = admin_client.post(CHANGELIST, data)
    done = admin_client.post(
        CHANGELIST, {**data, "apply": "1", "new_sponsor_code": new_root.invite_code, "reason": "ticket 7"}, follow=True
    )

    assert "New sponsor" in form_page.content.decode()
    assert "Moved 1 member." in done.content.decode()
    child.refresh_from_db()
    assert child.parent_id == new_root.pk
    assert TreeEvent.objects.get(kind=TreeEvent.Kind.MOVE).reason == "ticket 7"


def test_move_action_into_own_downline_shows_an_error_and_changes_nothing(admin_client):
    root, child, grandchild = make_chain(3)
    data = {
        "action": "move_members",
        ACTION_CHECKBOX_NAME: [child.pk],
        "apply": "1",
        "new_sponsor_code": grandchild.invite_code,
        "reason": "oops",
    }

    response = admin_client.post(CHANGELIST, data, follow=True)

    assert "cannot be moved under their downline" in response.content.decode()
    child.refresh_from_db()
    assert child.parent_id == root.pk
    assert not TreeEvent.objects.filter(kind=TreeEvent.Kind.MOVE).exists()


def test_move_action_with_unknown_code_redisplays_the_form(admin_client):
    root, child = make_chain(2)
    data = {
        "action": "move_members",
        ACTION_CHECKBOX_NAME: [child.pk],
        "apply": "1",
        "new_sponsor_code": "ZZZZZZZZ",
        "reason": "x",
    }

    response = admin_client.post(CHANGELIST, data)

    assert "No member has the invite code" in response.content.decode()
    child.refresh_from_db()
    assert child.parent_id == root.pk


def test_delete_action_keeps_members_with_a_team(admin_client):
    root, child, leaf = make_chain(3)
    data = {"action": "delete_members", ACTION_CHECKBOX_NAME: [root.pk, leaf.pk]}

    response = admin_client.post(CHANGELIST, data, follow=True)

    page = response.content.decode()
    assert "Deleted 1 member(s)." in page
    assert "has a team" in page
    assert sorted(Member.objects.values_list("pk", flat=True)) == [root.pk, child.pk]
    assert tree_check().is_valid


def test_suspend_action_is_audited(admin_client):
    member = MemberFactory()

    admin_client.post(CHANGELIST, {"action": "suspend_members", ACTION_CHECKBOX_NAME: [member.pk]})

    member.refresh_from_db()
    assert member.status == Member.Status.SUSPENDED
    assert TreeEvent.objects.filter(kind=TreeEvent.Kind.STATUS, member=member).exists()


def test_suspend_action_counts_only_members_it_changed(admin_client, staff_user):
    active, already = MemberFactory(), MemberFactory()
    admin_client.post(CHANGELIST, {"action": "suspend_members", ACTION_CHECKBOX_NAME: [already.pk]})

    response = admin_client.post(
        CHANGELIST, {"action": "suspend_members", ACTION_CHECKBOX_NAME: [active.pk, already.pk]}, follow=True
    )

    assert "Updated 1 member(s)." in response.content.decode()
    assert TreeEvent.objects.filter(kind=TreeEvent.Kind.STATUS).count() == 2


def test_staff_adding_a_member_without_sponsor_makes_a_root_even_with_a_default_sponsor(admin_client, settings):
    settings.REFERRALS_DEFAULT_SPONSOR_CODE = MemberFactory().invite_code
    user = UserFactory()

    admin_client.post(reverse("admin:referrals_member_add"), {"user": user.pk, "parent": ""})

    assert Member.objects.get(user=user).parent_id is None


def test_tree_events_are_read_only(admin_client):
    MemberFactory()
    event = TreeEvent.objects.get()

    assert admin_client.get(reverse("admin:referrals_treeevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:referrals_treeevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:referrals_treeevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert TreeEvent.objects.count() == 1
