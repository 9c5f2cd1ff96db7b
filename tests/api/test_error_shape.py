"""Every error under /api/ is JSON in the one error shape, `{"code", "message", "fields"}`, whoever answers it: DRF
(core.api.exception_handler, whatever the Accept header asked for), Django before any view (config.views: a body
over DATA_UPLOAD_MAX_MEMORY_SIZE, a Host not allowed, too many fields), or anything else (config.middleware.
ApiErrorMiddleware: a 500, a write to an address without its trailing slash)."""

import json

import pytest
from django.test import Client

from members.api.me import MeApi
from tests.api.conftest import bearer
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

ME, LINK_CREATE = "/api/v1/me/", "/api/v1/links/create/"


@pytest.fixture
def member():
    return MemberFactory()


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def _explode(self, request):
    raise RuntimeError("a bug")


def signed_in_without_csrf(member) -> Client:
    session = Client(enforce_csrf_checks=True, raise_request_exception=False)
    session.force_login(member.user)
    return session


# (name, status, code or None for "any", the request)
CASES = [
    ("wrong method", 405, "method_not_allowed", lambda c, h, m: c.delete(ME, **h)),
    ("unknown url", 404, "not_found", lambda c, h, m: c.get("/api/v1/nothing-here/", **h)),
    ("unknown url, browser", 404, "not_found", lambda c, h, m: c.get("/api/v1/nope/", HTTP_ACCEPT="text/html")),
    ("accept xml", 406, "not_acceptable", lambda c, h, m: c.get(ME, HTTP_ACCEPT="application/xml", **h)),
    ("no credentials, browser", 401, "not_authenticated", lambda c, h, m: c.get(ME, HTTP_ACCEPT="text/html")),
    (
        "forbidden, browser",
        403,
        None,
        lambda c, h, m: c.post(LINK_CREATE, {}, content_type="application/json", HTTP_ACCEPT="text/html", **h),
    ),
    ("xml body", 415, "unsupported_media_type", lambda c, h, m: c.post(LINK_CREATE, "<a/>", "application/xml", **h)),
    ("broken json", 400, "parse_error", lambda c, h, m: c.post(LINK_CREATE, "{", "application/json", **h)),
    (
        "multipart without boundary",
        400,
        "parse_error",
        lambda c, h, m: c.post(LINK_CREATE, "x", content_type="multipart/form-data", **h),
    ),
    (
        "json body too large",
        413,
        "request_too_large",
        lambda c, h, m: c.post(LINK_CREATE, json.dumps({"campaign": "x" * 5000}), "application/json", **h),
    ),
    (
        "form body too large",
        413,
        "request_too_large",
        lambda c, h, m: c.post(LINK_CREATE, {"campaign": "x" * 5000}, **h),
    ),
    (
        "too many form fields",
        400,
        "bad_request",
        lambda c, h, m: c.post(
            LINK_CREATE, "&".join(f"f{i}=1" for i in range(200)), "application/x-www-form-urlencoded", **h
        ),
    ),
    ("host not allowed", 400, "bad_request", lambda c, h, m: c.get(ME, HTTP_HOST="evil.example", **h)),
    (
        "csrf missing on a session write",
        403,
        "permission_denied",
        lambda c, h, m: signed_in_without_csrf(m).post(LINK_CREATE, {}, content_type="application/json"),
    ),
    (
        "write without the trailing slash",
        404,
        "not_found",
        lambda c, h, m: c.post(LINK_CREATE.rstrip("/"), {}, content_type="application/json", **h),
    ),
    ("schema in an unknown format", 404, "not_found", lambda c, h, m: c.get("/api/schema/?format=xml")),
    ("server error", 500, "server_error", lambda c, h, m: c.get(ME, **h)),
]


@pytest.mark.parametrize(("name", "status", "code", "send"), CASES, ids=[case[0] for case in CASES])
def test_every_api_error_is_json_in_the_error_shape(client, member, settings, monkeypatch, name, status, code, send):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    if name == "server error":
        monkeypatch.setattr(MeApi, "get", _explode)
    if name == "forbidden, browser":
        member.status = member.Status.SUSPENDED
        member.save(update_fields=["status"])

    response = send(client, bearer(member), member)

    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert isinstance(body["message"], str) and body["message"]
    assert body["fields"] == {}
    if code is not None:
        assert body["code"] == code


def test_the_headers_of_an_error_are_kept(client, member):
    assert client.delete(ME, **bearer(member))["Allow"] == "GET, HEAD, OPTIONS"
    assert client.get(ME, HTTP_ACCEPT="text/html")["WWW-Authenticate"].startswith("Bearer")


def test_a_read_without_the_trailing_slash_is_still_redirected(client, member):
    response = client.get(ME.rstrip("/"), **bearer(member))

    assert response.status_code == 301
    assert response["Location"] == ME


def test_pages_outside_the_api_keep_their_html_errors(client):
    response = client.get("/dashboard/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "This request could not be understood" in response.content.decode()
