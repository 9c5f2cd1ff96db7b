"""The member's identity page (issue #24) and the withdrawal refused until the identity is verified: on the payouts
page (a clear message and a link to the identity page) and in the member API; the Alipay real name must be the
verified legal name."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Identity, IdentityEvent
from core.id_verification import IdVerificationUnavailable
from payouts.models import PayoutAccount, Withdrawal
from payouts.services import PayoutError, payout_account_save, withdrawal_request
from tests.factories import MemberFactory, UserFactory, resident_id
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db

IDENTITY = reverse("members:identity")
PAYOUTS = reverse("members:payouts")
NUMBER = "11010519491231002X"


@pytest.fixture(autouse=True)
def _console_verifier(settings):
    settings.IDENTITY_VERIFIER = "core.id_verification.ConsoleIdVerifier"


@pytest.fixture
def newcomer(db):
    """A member with money and a bank account, and no identity yet."""
    member = MemberFactory(identity=False)
    credit(member, "200.00")
    bank_account(member)
    return member


def _capture(client, **values):
    return client.post(IDENTITY, {"id_type": "resident_id", "legal_name": "王芳", "id_number": NUMBER, **values})


def test_a_withdrawal_is_refused_until_the_identity_is_verified(client, newcomer):
    # given a member without a verified identity
    client.force_login(newcomer.user)
    page = client.get(PAYOUTS).content.decode()
    assert 'id="identity-required"' in page and f'href="{IDENTITY}"' in page

    # when they ask to withdraw: refused, with the reason, and nothing changed
    refused = client.post(PAYOUTS, {"amount": "50.00"})
    assert refused.status_code == 400
    assert "Verify your identity" in refused.content.decode()
    assert f'href="{IDENTITY}"' in refused.content.decode()
    assert not Withdrawal.objects.exists()
    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=newcomer, amount=Decimal("50.00"))
    assert error.value.code == "identity_unverified"

    # and after capturing their identity (verified at once by the console verifier), it goes through
    response = _capture(client)
    assert response.status_code == 302
    assert Identity.objects.get(user=newcomer.user).status == Identity.Status.VERIFIED
    assert "identity-required" not in client.get(PAYOUTS).content.decode()
    assert client.post(PAYOUTS, {"amount": "50.00"}).status_code == 302
    assert Withdrawal.objects.filter(member=newcomer).count() == 1


def test_a_failed_or_pending_identity_still_refuses(client, newcomer):
    client.force_login(newcomer.user)
    _capture(client, legal_name="Xu Mismatch")
    assert Identity.objects.get(user=newcomer.user).status == Identity.Status.FAILED
    assert client.post(PAYOUTS, {"amount": "50.00"}).status_code == 400
    assert not Withdrawal.objects.exists()


def test_the_member_api_refuses_a_withdrawal_until_verified(newcomer):
    api = APIClient()
    api.force_authenticate(newcomer.user)
    response = api.post(reverse("members-api:withdrawal_create"), {"amount": "50.00"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "identity_unverified"
    assert not Withdrawal.objects.exists()


def test_the_page_captures_once_and_shows_only_masked_values(client, newcomer):
    client.force_login(newcomer.user)
    assert 'name="id_number"' in client.get(IDENTITY).content.decode()
    _capture(client)
    page = client.get(IDENTITY).content.decode()
    assert "110***********002X" in page and "王*" in page
    assert NUMBER not in page and "王芳" not in page
    assert 'name="id_number"' not in page  # no form to change it: staff do that

    # a second capture is refused and changes nothing
    again = client.post(IDENTITY, {"id_type": "resident_id", "legal_name": "李雷", "id_number": resident_id(4)})
    assert again.status_code == 302
    assert IdentityEvent.objects.filter(kind="captured").count() == 1


def test_a_bad_id_number_is_a_form_error_not_a_500(client, newcomer):
    client.force_login(newcomer.user)
    response = _capture(client, id_number="110105194912310021")
    assert response.status_code == 400
    assert "check digit" in response.content.decode()
    response = _capture(client, id_type="driving_licence")
    assert response.status_code == 400
    assert not Identity.objects.filter(user=newcomer.user).exists()


def test_another_members_identity_is_never_shown_and_a_non_member_gets_404(client, newcomer):
    # given a member whose identity is on file
    client.force_login(newcomer.user)
    _capture(client)
    client.logout()

    # when another member opens the identity page: only their own (none), never the first member's
    other = MemberFactory(identity=False)
    client.force_login(other.user)
    page = client.get(IDENTITY).content.decode()
    assert "110***********002X" not in page and "王*" not in page
    assert 'name="id_number"' in page

    # and someone signed in without a membership gets no identity page at all
    client.force_login(UserFactory())
    assert client.get(IDENTITY).status_code in (302, 404)
    assert client.get(reverse("members:identity_check_again")).status_code in (302, 404, 405)


def test_a_business_payee_is_registered_with_a_valid_credit_code(client, newcomer):
    client.force_login(newcomer.user)
    _capture(client)
    url = reverse("members:identity_business")
    refused = client.post(url, {"company_name": "某某科技有限公司", "credit_code": "91350100M000100Y44"})
    assert refused.status_code == 400 and "check character" in refused.content.decode()
    assert (
        client.post(url, {"company_name": "某某科技有限公司", "credit_code": "91350100M000100Y43"}).status_code == 302
    )
    assert Identity.objects.get(user=newcomer.user).payee_kind == Identity.PayeeKind.BUSINESS


# --- The payout rails' real name ---


def test_an_alipay_account_in_another_name_than_the_verified_legal_name_is_refused():
    member = MemberFactory(identity="王芳")
    with pytest.raises(PayoutError) as refused:
        payout_account_save(member=member, method="alipay", holder_name="王五", alipay_account="wf@example.com")
    assert "verified legal name" in refused.value.message_dict["holder_name"][0]
    assert not PayoutAccount.objects.exists()
    account = payout_account_save(member=member, method="alipay", holder_name=" 王芳 ", alipay_account="wf@example.com")
    assert account.holder_name == "王芳"


def test_the_payout_account_page_says_why_an_alipay_name_is_refused(client):
    member = MemberFactory(identity="王芳")
    client.force_login(member.user)
    response = client.post(
        reverse("members:payout_account"),
        {"method": "alipay", "holder_name": "王五", "alipay_account": "wf@example.com"},
    )
    assert response.status_code == 400
    assert "verified legal name" in response.content.decode()


def test_a_withdrawal_to_an_alipay_account_bound_before_the_identity_is_refused_on_a_mismatch(client):
    # given an Alipay account bound before any identity, in another name than the one later verified
    member = MemberFactory(identity=False)
    credit(member, "100.00")
    payout_account_save(member=member, method="alipay", holder_name="王五", alipay_account="w5@example.com")
    client.force_login(member.user)
    _capture(client)  # verified as 王芳

    # when they withdraw: refused with the reason, nothing requested
    response = client.post(PAYOUTS, {"amount": "50.00"})
    assert response.status_code == 400
    assert "verified legal name" in response.content.decode()
    assert not Withdrawal.objects.exists()


def test_check_again_verifies_a_pending_identity_and_is_rate_limited(client, newcomer, settings, monkeypatch):
    # given an identity left pending because the provider could not answer
    def unavailable(**values):
        raise IdVerificationUnavailable("down", code="-4")

    monkeypatch.setattr("accounts.identity.id_verify", unavailable)
    client.force_login(newcomer.user)
    _capture(client)
    assert Identity.objects.get(user=newcomer.user).status == Identity.Status.PENDING
    assert "Check again" in client.get(IDENTITY).content.decode()

    # when the member asks again: counted, and refused over the limit without asking the provider
    settings.RATE_LIMIT_IDENTITY_CHECK = "1/hour"
    check = reverse("members:identity_check_again")
    assert client.post(check).status_code == 302
    assert client.post(check).status_code == 429
    monkeypatch.undo()
    settings.RATE_LIMIT_IDENTITY_CHECK = "5/hour"
    assert client.post(check).status_code == 302
    assert Identity.objects.get(user=newcomer.user).status == Identity.Status.VERIFIED


@pytest.mark.parametrize(
    "details",
    [
        {"method": "bank", "bank_name": "中国工商银行", "account_number": "6222021234567890"},
        {"method": "wechat", "wechat_id": "wang_fang"},
    ],
)
def test_a_bank_or_wechat_account_in_another_name_is_refused_too(details):
    # the bank's 户名 and WeChat Pay's user_name are real-name checks as well
    member = MemberFactory(identity="王芳")
    with pytest.raises(PayoutError) as refused:
        payout_account_save(member=member, holder_name="王五", **details)
    assert refused.value.message_dict["holder_name"] == [
        "The payout account's real name must be your verified legal name."
    ]
    assert not PayoutAccount.objects.filter(member=member).exists()
    assert payout_account_save(member=member, holder_name="王芳", **details).holder_name == "王芳"
