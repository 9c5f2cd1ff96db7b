import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from referrals.models import Member, TreeEvent
from referrals.selectors import tree_check
from referrals.services import member_set_status
from tests.factories import PASSWORD, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def signup_data(**overrides):
    data = {
        "email": "new.person@example.com",
        "first_name": "New Person",
        "password1": "a-long-enough-passphrase",
        "password2": "a-long-enough-passphrase",
    }
    data.update(overrides)
    return data


def test_join_page_names_the_sponsor(client):
    sponsor = MemberFactory(user=UserFactory(first_name="Li", last_name="Na"))

    response = client.get(reverse("members:join_with_code", args=[sponsor.invite_code]))

    assert response.status_code == 200
    assert "Li Na invites you" in response.content.decode()


def test_sign_up_through_invite_link_joins_under_sponsor_and_signs_in(client):
    sponsor = MemberFactory()

    response = client.post(reverse("members:join_with_code", args=[sponsor.invite_code]), signup_data())

    assert response.status_code == 302
    assert response["Location"] == reverse("members:my_shop")  # a new member opens their free shop first (#23)
    member = Member.objects.get(user__email="new.person@example.com")
    assert member.parent_id == sponsor.pk
    assert member.join_source == Member.JoinSource.INVITE
    assert member.level == 1
    assert client.get(reverse("members:dashboard")).status_code == 200
    event = TreeEvent.objects.get(kind=TreeEvent.Kind.JOIN, member=member)
    assert event.new_parent_id == sponsor.pk
    assert tree_check().is_valid


def test_invite_code_is_case_and_space_insensitive(client):
    sponsor = MemberFactory()

    client.post(reverse("members:join_with_code", args=[f" {sponsor.invite_code.lower()} "]), signup_data())

    assert Member.objects.get(user__email="new.person@example.com").parent_id == sponsor.pk


def test_unknown_code_gets_a_clear_message_and_a_way_to_join_without_sponsor(client):
    response = client.get(reverse("members:join_with_code", args=["NOSUCHCD"]))

    assert response.status_code == 404
    page = response.content.decode()
    assert "could not find the invite code" in page
    assert f'href="{reverse("members:join")}"' in page
    assert "password1" not in page


def test_post_to_unknown_code_creates_nothing(client):
    response = client.post(reverse("members:join_with_code", args=["NOSUCHCD"]), signup_data())

    assert response.status_code == 404
    assert not User.objects.filter(email="new.person@example.com").exists()
    assert Member.objects.count() == 0


def test_suspended_sponsor_code_is_refused_with_nothing_created(client, staff_user):
    sponsor = MemberFactory()
    member_set_status(member=sponsor, status=Member.Status.SUSPENDED, actor=staff_user)
    url = reverse("members:join_with_code", args=[sponsor.invite_code])

    page = client.get(url).content.decode()
    response = client.post(url, signup_data())

    assert "no longer valid" in page
    assert "join without a sponsor" in page.lower()
    assert response.status_code == 200
    assert not User.objects.filter(email="new.person@example.com").exists()
    assert Member.objects.count() == 1


def test_sponsor_suspended_between_page_and_submit_rolls_back_the_new_account(client, staff_user, monkeypatch):
    sponsor = MemberFactory()
    url = reverse("members:join_with_code", args=[sponsor.invite_code])
    # The page was shown while the sponsor was active; the sponsor is suspended before the form arrives.
    from members.views import join as views

    real_lookup = views.member_by_invite_code

    def lookup_then_suspend(code):
        found = real_lookup(code)
        member_set_status(member=sponsor, status=Member.Status.SUSPENDED, actor=staff_user)
        return found

    monkeypatch.setattr(views, "member_by_invite_code", lookup_then_suspend)

    response = client.post(url, signup_data(), follow=True)

    assert "no longer valid" in response.content.decode()
    assert not User.objects.filter(email="new.person@example.com").exists()
    assert Member.objects.count() == 1


def test_join_without_sponsor_makes_a_root(client):
    response = client.post(reverse("members:join"), signup_data())

    assert response.status_code == 302
    member = Member.objects.get(user__email="new.person@example.com")
    assert member.parent is None
    assert member.level == 0
    assert member.join_source == Member.JoinSource.DIRECT


def test_join_without_sponsor_goes_under_configured_default_sponsor(client, settings):
    house = MemberFactory()
    settings.REFERRALS_DEFAULT_SPONSOR_CODE = house.invite_code

    client.post(reverse("members:join"), signup_data())

    member = Member.objects.get(user__email="new.person@example.com")
    assert member.parent_id == house.pk
    assert member.join_source == Member.JoinSource.DEFAULT_SPONSOR


def test_invalid_sign_up_shows_errors_beside_fields_and_creates_nothing(client):
    sponsor = MemberFactory()

    response = client.post(
        reverse("members:join_with_code", args=[sponsor.invite_code]),
        signup_data(email="not-an-email", password2="something-else"),
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert "email" in form.errors
    assert "password2" in form.errors
    assert User.objects.count() == 1
    assert Member.objects.count() == 1


def test_email_already_registered_is_refused_case_insensitively(client):
    UserFactory(email="taken@example.com")

    response = client.post(reverse("members:join"), signup_data(email="TAKEN@example.com"))

    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["email"][0]
    assert Member.objects.count() == 0


def test_signed_in_user_without_membership_joins_with_one_click(client):
    sponsor = MemberFactory()
    user = UserFactory()
    client.force_login(user)
    url = reverse("members:join_with_code", args=[sponsor.invite_code])

    page = client.get(url).content.decode()
    response = client.post(url)

    assert "password1" not in page
    assert response.status_code == 302
    assert Member.objects.get(user=user).parent_id == sponsor.pk


def test_second_join_is_refused_and_changes_nothing(client):
    first_sponsor = MemberFactory()
    other_sponsor = MemberFactory()
    member = MemberFactory(sponsor=first_sponsor)
    client.force_login(member.user)

    response = client.post(reverse("members:join_with_code", args=[other_sponsor.invite_code]), follow=True)

    assert "already a member" in response.content.decode()
    member.refresh_from_db()
    assert member.parent_id == first_sponsor.pk
    assert Member.objects.filter(user=member.user).count() == 1
    assert TreeEvent.objects.filter(member=member).count() == 1


def test_login_by_email_or_phone_then_dashboard_shows_invite_link(client):
    member = MemberFactory(user=UserFactory(email="li@example.com", phone="+8613800000000"))  # stored in E.164

    assert client.login(username="LI@example.com", password=PASSWORD)
    client.logout()
    assert client.login(username="13800000000", password=PASSWORD)
    page = client.get(reverse("members:dashboard")).content.decode()

    assert f"/join/{member.invite_code}/" in page


def test_dashboard_sends_a_signed_in_non_member_to_join(client):
    client.force_login(UserFactory())

    response = client.get(reverse("members:dashboard"))

    assert response.status_code == 302
    assert response["Location"] == reverse("members:join")


def test_dashboard_needs_login(client):
    response = client.get(reverse("members:dashboard"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_join_page_does_not_reveal_the_sponsors_email(client):
    sponsor = MemberFactory(user=UserFactory(first_name="", email="secret.person@example.com"))

    page = client.get(reverse("members:join_with_code", args=[sponsor.invite_code])).content.decode()

    assert "secret.person@example.com" not in page
    assert "se***@example.com invites you" in page
