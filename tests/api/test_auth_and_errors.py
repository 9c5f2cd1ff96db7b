"""Token and session authentication, the token page, throttling and the one error shape."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_hash, token_create, token_revoke
from tests.api.conftest import bearer
from tests.factories import PASSWORD, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


def assert_error_shape(response, status_code: int, code: str | None = None) -> dict:
    assert response.status_code == status_code, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["fields"], dict)
    if code is not None:
        assert body["code"] == code
    return body


# --- Tokens ------------------------------------------------------------------------------


def test_token_create_stores_only_a_hash_and_returns_the_key_once():
    user = UserFactory()

    created = token_create(user=user, name="  phone  ")

    token = ApiToken.objects.get(pk=created.token.pk)
    assert token.name == "phone"
    assert token.key_hash == api_token_hash(created.key)
    assert created.key not in {token.key_hash, token.prefix}
    assert created.key.startswith(token.prefix) and len(token.prefix) == 8


def test_token_authenticates_with_bearer_and_token_keywords(api_client):
    member = MemberFactory()
    key = token_create(user=member.user, name="app").key

    for keyword in ("Bearer", "Token", "bearer"):
        response = api_client.get(ME, HTTP_AUTHORIZATION=f"{keyword} {key}")
        assert response.status_code == 200
        assert response.json()["id"] == member.pk
        assert response.json()["email"] == member.user.email
    assert ApiToken.objects.get(user=member.user).last_used_at is not None


def test_revoked_token_is_401_in_the_error_shape(api_client):
    member = MemberFactory()
    created = token_create(user=member.user, name="app")
    token_revoke(user=member.user, token_id=created.token.pk)

    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {created.key}")

    assert_error_shape(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer", "Bearer a b", "Token \u00e9\u00e9"])
def test_unknown_or_malformed_token_is_401(api_client, header):
    response = api_client.get(ME, HTTP_AUTHORIZATION=header.encode().decode("latin-1"))

    assert_error_shape(response, 401, "authentication_failed")


def test_no_credentials_is_401(api_client):
    assert_error_shape(api_client.get(ME), 401, "not_authenticated")


def test_session_authentication_works(api_client):
    member = MemberFactory()
    api_client.force_login(member.user)

    response = api_client.get(ME)

    assert response.status_code == 200
    assert response.json()["display_name"]
    assert response.json()["joined_at"].endswith(("Z", "+00:00")) or "+" in response.json()["joined_at"]


def test_signed_in_non_member_is_403_in_the_error_shape(api_client):
    api_client.force_login(UserFactory())

    assert_error_shape(api_client.get(ME), 403)


def test_unknown_url_and_wrong_method_are_in_the_error_shape(api_client):
    headers = bearer(MemberFactory())

    assert_error_shape(api_client.get("/api/v1/shop/listings/999999/", **headers), 405, "method_not_allowed")
    assert_error_shape(api_client.delete(ME, **headers), 405, "method_not_allowed")
    assert_error_shape(api_client.get("/api/v1/public/shops/no-such-shop/"), 404, "not_found")


def test_bad_json_is_400_in_the_error_shape(api_client, shop):
    response = api_client.patch("/api/v1/shop/", "{not json", content_type="application/json", **bearer(shop.owner))

    assert_error_shape(response, 400, "parse_error")


# --- Throttling -----------------------------------------------------------------------


def test_token_throttle_answers_429_with_retry_after(api_client, settings):
    settings.API_THROTTLE_RATES = {"token": "2/minute", "user": "100/minute", "anon": "100/minute"}
    headers = bearer(MemberFactory())

    assert api_client.get(ME, **headers).status_code == 200
    assert api_client.get(ME, **headers).status_code == 200
    response = api_client.get(ME, **headers)

    assert_error_shape(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # another token is counted apart
    assert api_client.get(ME, **bearer(MemberFactory())).status_code == 200


def test_anonymous_throttle_is_per_ip(api_client, settings, shop):
    settings.API_THROTTLE_RATES = {"token": "100/minute", "user": "100/minute", "anon": "1/minute"}
    url = f"/api/v1/public/shops/{shop.slug}/"

    assert api_client.get(url, REMOTE_ADDR="10.0.0.1").status_code == 200
    response = api_client.get(url, REMOTE_ADDR="10.0.0.1")
    assert_error_shape(response, 429, "throttled")
    assert "Retry-After" in response
    assert api_client.get(url, REMOTE_ADDR="10.0.0.2").status_code == 200


# --- The token page ---------------------------------------------------------------------------


def test_tokens_page_needs_login(client):
    response = client.get(reverse("accounts:tokens"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_tokens_page_creates_a_token_and_shows_the_key_once(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:tokens"), {"name": "My website"})

    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    key = response.context["created"].key
    assert api_token_hash(key) == token.key_hash
    assert key in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    again = client.get(reverse("accounts:tokens"))
    assert key not in again.content.decode()
    assert "My website" in again.content.decode()


def test_tokens_page_refuses_an_empty_name(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:tokens"), {"name": ""})

    assert response.status_code == 400
    assert not ApiToken.objects.filter(user=user).exists()


def test_tokens_page_revokes_own_token(client):
    user = UserFactory()
    token = token_create(user=user, name="app").token
    client.force_login(user)

    response = client.post(reverse("accounts:token-revoke", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_tokens_page_another_users_token_is_404(client):
    token = token_create(user=UserFactory(), name="theirs").token
    client.force_login(UserFactory())

    response = client.post(reverse("accounts:token-revoke", args=[token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert "theirs" not in client.get(reverse("accounts:tokens")).content.decode()


def test_revoke_is_post_only(client):
    user = UserFactory()
    token = token_create(user=user, name="app").token
    client.force_login(user)

    assert client.get(reverse("accounts:token-revoke", args=[token.pk])).status_code == 405


def test_last_used_at_is_written_at_most_once_a_minute(api_client):
    member = MemberFactory()
    created = token_create(user=member.user, name="app")
    recent = timezone.now() - timedelta(seconds=10)
    ApiToken.objects.filter(pk=created.token.pk).update(last_used_at=recent)

    api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {created.key}")

    assert ApiToken.objects.get(pk=created.token.pk).last_used_at == recent


def test_login_password_is_not_an_api_credential(api_client):
    member = MemberFactory()

    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {PASSWORD}")

    assert_error_shape(response, 401)
    assert member.user.api_tokens.count() == 0


def test_the_anonymous_rate_is_per_connecting_address_not_per_forwarded_header(client, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "anon": "2/minute"}
    url = "/api/v1/public/shops/nowhere/"

    statuses = [client.get(url, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(4)]

    assert statuses[:2] == [404, 404]
    assert statuses[2:] == [429, 429]


def test_ids_too_large_for_the_database_are_a_400_or_404_not_a_500(client):
    member = MemberFactory()
    client.force_login(member.user)

    too_big = client.get("/api/v1/catalogue/", {"category": "100000000000000000000000"})
    product = client.get("/api/v1/public/shops/nowhere/products/99999999999999999999999/")

    assert too_big.status_code == 400 and too_big.json()["fields"].keys() == {"category"}
    assert product.status_code == 404 and product.json()["code"] == "not_found"
