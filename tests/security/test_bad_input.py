"""Bad input is a 400 that changes nothing, never a 500.

- A NUL character anywhere a view could pass it to the database (PostgreSQL refuses NUL in text, even in a
  comparison): every URL pattern with NUL in each captured argument, every URL with NUL in its query string, a
  session cookie with NUL, signed out and signed in, are 400s (config.middleware.RejectNulCharactersMiddleware); a
  form posted with NUL to every page gets its fields' errors, never a 500.
- JSON nested 100,000 levels deep to every write operation of the API schema (core.api.JSONParser).
Run on SQLite and, with DATABASE_URL, on PostgreSQL (where `/l/%00` used to raise DataError).
"""

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.services import token_create
from members.webhooks.models import Endpoint
from members.webhooks.services import endpoint_create
from payouts.models import PayoutAccount, Withdrawal
from shops.models import ShareLink, Shop, ShopListing
from shops.services import share_link_create
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

NUL = "%00"
# Every query parameter a view or filter of ours reads, and a few of admin's.
QUERY_NAMES = [
    "q", "search", "category", "sort", "page", "page_size", "level", "network", "order", "before", "date_from",
    "date_to", "format", "next", "kind", "actor", "status", "o", "p", "e",
]  # fmt: skip

# --- Every URL pattern, as a URL with sample arguments ---------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A URL pattern as literal text and captured arguments: `parts` alternates literal, argument, literal, ..."""

    pattern: str
    parts: tuple[str, ...]

    def url(self, nul_in: int | None = None) -> str:
        """The URL with sample arguments; NUL appended to the `nul_in`-th argument."""
        pieces = []
        for index, part in enumerate(self.parts):
            argument = index // 2
            pieces.append(part + NUL if index % 2 and argument == nul_in else part)
        return "/" + "".join(pieces)

    @property
    def arguments(self) -> int:
        return len(self.parts) // 2


ROUTE_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+):)?\w+>")
REGEX_GROUP = re.compile(r"\(\?P<\w+>(?P<body>[^)]*)\)")


def sample(converter_or_regex: str) -> str:
    if converter_or_regex in ("int", "[0-9]+", r"\d+"):
        return "1"
    choices = converter_or_regex.split("|")
    if all(re.fullmatch(r"[\w-]+", choice) for choice in choices):
        return choices[0]  # an alternation of words (svg|png, or admin's app labels)
    return "abc"


def split(pattern: str) -> tuple[str, ...]:
    regex = pattern.startswith("^") or pattern.endswith("$") or "(?P<" in pattern
    matcher = REGEX_GROUP if regex else ROUTE_ARGUMENT
    parts, position = [], 0
    for match in matcher.finditer(pattern):
        literal = pattern[position : match.start()]
        parts += [literal, sample(match.group("body") if regex else (match.group("converter") or "str"))]
        position = match.end()
    parts.append(pattern[position:])
    if regex:
        parts = [
            part.replace("^", "").replace("$", "").replace("\\", "") if i % 2 == 0 else part
            for i, part in enumerate(parts)
        ]
    return tuple(parts)


def every_route() -> list[Route]:
    def walk(patterns, prefix: str):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    routes = []
    for pattern in walk(get_resolver().url_patterns, ""):
        # Regex pieces of a prefix and of its pattern join as text: "^a/" + "^b$" is "a/b" once split.
        route = Route(pattern, split(pattern.replace("$^", "").replace("/^", "/")))
        resolve(route.url())  # raises Resolver404 if the sample URL does not reach this pattern's view
        routes.append(route)
    return routes


ROUTES = every_route()


def test_every_url_pattern_is_covered():
    assert len(ROUTES) > 300
    assert any(route.pattern == "l/<str:code>" for route in ROUTES)
    assert sum(route.arguments for route in ROUTES) > 150


# --- NUL ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def member():
    """A member with a shop, a link and staff rights: every page, member and back office alike, is theirs to see."""
    member = MemberFactory(user__is_staff=True, user__is_superuser=True)
    shop_with_products(ProductFactory(), owner=member)
    return member


def assert_bad_request(response, url: str) -> None:
    assert response.status_code == 400, (url, response.status_code)
    if url.startswith("/api/"):
        assert response["Content-Type"] == "application/json", url
        assert response.json() == {
            "code": "bad_request",
            "message": "The request holds a NUL character, which is not allowed.",
            "fields": {},
        }, url
    else:
        assert "This request could not be understood" in response.content.decode(), url


def nul_requests() -> list[tuple[str, str]]:
    """(method, URL): NUL in each captured argument, in the query string, in a posted form (except to the API,
    tested with its own bodies)."""
    requests = []
    for route in ROUTES:
        requests += [("get", route.url(nul_in=argument)) for argument in range(route.arguments)]
        query = "&".join(f"{name}={NUL}" for name in QUERY_NAMES)
        requests += [("get", f"{route.url()}?{query}"), ("get", f"{route.url()}?{NUL}=1")]
        if not route.url().startswith("/api/"):
            requests.append(("post", route.url()))
    return requests


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_a_nul_character_in_any_url_is_a_400_and_in_any_form_never_a_500(client, member, signed_in):
    if signed_in:
        client.force_login(member.user)
    counts = (Shop.objects.count(), ShopListing.objects.count(), ShareLink.objects.count())

    for method, url in nul_requests():
        if method == "get":
            assert_bad_request(client.get(url), url)
        else:  # a form's fields refuse NUL themselves, with an error to fix: anything but a 5xx
            response = client.post(url, {"name": "x\x00y", "username": "a\x00", "q": "\x00", "code": "\x00"})
            assert response.status_code < 500, (url, response.status_code)

    assert (Shop.objects.count(), ShopListing.objects.count(), ShareLink.objects.count()) == counts


@pytest.mark.parametrize("url", ["/l/%00", "/join/%00/", "/pay/sandbox/%00/", "/orders/%00/", "/s/%00/"])
def test_the_reported_nul_urls_are_400s_signed_out(client, url):
    assert_bad_request(client.get(url), url)


@pytest.mark.parametrize("url", ["/dashboard/", "/api/v1/me/", "/", "/l/abc"])
def test_a_nul_in_the_session_cookie_is_a_400(client, url):
    # http.cookies decodes the octal escape of a quoted cookie value: the session key holds a NUL
    client.cookies.load('sessionid="\\000abcdefghijkl"')
    assert "\x00" in client.cookies["sessionid"].value

    assert_bad_request(client.get(url), url)


def test_a_nul_in_another_cookie_is_ignored_like_any_malformed_value(client, member, settings):
    link = share_link_create(owner=member)
    client.cookies[settings.ATTRIBUTION_COOKIE] = "a\x00b"
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh\x00"

    response = client.get(f"/l/{link.code}", HTTP_USER_AGENT="Mozilla/5.0")

    assert response.status_code == 302


def test_the_dashboard_search_with_nul_is_a_400(client, member):
    client.force_login(member.user)

    for url in ("/dashboard/shop/products/add/?q=%00", "/dashboard/shop/products/add/?category=%00&sort=%00"):
        assert_bad_request(client.get(url), url)


# --- Deeply nested JSON --------------------------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def write_operations() -> list[tuple[str, str, bool]]:
    """(method, path template, has a request body) of every write operation in the API schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path, "requestBody" in operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch", "delete")
    ]


def api_writes_snapshot(member) -> tuple:
    """What the API's write operations could change."""
    return (
        Shop.objects.values_list("name", "description").get(owner=member),
        list(ShopListing.objects.values_list("pk", "is_featured", "position")),
        ShareLink.objects.count(),
        PayoutAccount.objects.count(),
        Withdrawal.objects.count(),
        list(Endpoint.objects.values_list("pk", "url", "secret", "is_active", "event_types")),
    )


def test_json_nested_100000_deep_is_a_400_at_every_write_operation(member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=member.user, name='deep').key}")
    listing = ShopListing.objects.get(shop__owner=member)
    endpoint = endpoint_create(owner=member, url="http://127.0.0.1:9/hooks", event_types=["order.paid"])
    # a write with a body gets a real object; one without gets an unknown id (its body is not read, a 404 follows)
    real_ids, unknown_ids = (
        {"listing_id": listing.pk, "endpoint_id": endpoint.pk},
        {
            "listing_id": 999_999,
            "link_id": 999_999,
            "withdrawal_id": 999_999,
            "endpoint_id": 999_999,
            "delivery_id": 999_999,
        },
    )
    # The fulfilment API is staff's (a warehouse's token with the permission to change orders), on a paid order.
    warehouse = UserFactory(is_staff=True)
    warehouse.user_permissions.add(Permission.objects.get(codename="change_order", content_type__app_label="shops"))
    staff_client = APIClient()
    staff_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=warehouse, name='deep').key}")
    real_ids["number"] = pay_order(place_order(shop_with_products(ProductFactory()))).number
    unknown_ids["number"] = "00000000000000"
    operations = write_operations()
    before = api_writes_snapshot(member)

    assert len([operation for operation in operations if operation[2]]) >= 6
    for method, template, has_body in operations:
        path = template.format(**(real_ids if has_body else unknown_ids))
        caller = staff_client if path.startswith("/api/v1/fulfilment/") else client
        response = getattr(caller, method)(path, DEEP, content_type="application/json")
        assert response["Content-Type"] == "application/json", path
        if has_body:
            assert response.status_code == 400, (method, path, response.content[:200])
            assert response.json()["code"] == "parse_error"
            assert "nested more than 32 levels" in response.json()["message"]
        else:
            assert response.status_code == 404, (method, path, response.status_code)

    assert api_writes_snapshot(member) == before


@pytest.mark.parametrize("depth", [32, 33])
def test_nesting_up_to_the_limit_parses(member, depth):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=member.user, name='deep').key}")
    body = '{"name": "Deep", "extra": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"

    response = client.patch("/api/v1/shop/", body, content_type="application/json")

    if depth <= 32:
        assert response.status_code == 200
        assert Shop.objects.get(owner=member).name == "Deep"
    else:
        assert response.status_code == 400 and response.json()["code"] == "parse_error"
        assert Shop.objects.get(owner=member).name != "Deep"
