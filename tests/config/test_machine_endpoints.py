"""Payment and transfer notifications (views marked @machine_endpoint) skip the page middleware; every other
address still goes through all of it (config.middleware.MachineEndpointMiddleware, core.machine)."""

import json
import time

import pytest
from django.http import HttpResponse
from django.urls import get_resolver, include, path, re_path, reverse

from core.machine import machine_endpoint, machine_resolver, machine_routes
from shops.payments.sandbox import SIGNATURE_HEADER, sign

pytestmark = pytest.mark.django_db


def test_the_urlconf_marks_exactly_the_provider_notifications_and_the_health_probes():
    found = {(route, pattern.name) for route, pattern in machine_routes(get_resolver().url_patterns)}

    assert found == {
        ("payments/webhook/<str:provider>/", "payment_webhook"),
        ("payouts/notify/<str:rail>/", "transfer_notification"),
        ("healthz", "healthz"),
        ("readyz", "readyz"),
    }
    _resolver, prefixes = machine_resolver(get_resolver().url_patterns)
    assert set(prefixes) == {"/payments/webhook/", "/payouts/notify/", "/healthz", "/readyz"}


def test_routes_are_joined_through_includes_and_regex_prefixes_are_left_to_the_stack():
    @machine_endpoint
    def marked(request, **kwargs):
        return HttpResponse("marked")

    def page(request):
        return HttpResponse("page")

    inner = ([path("notify/<int:n>/", marked, name="inner"), path("page/", page)], "inner")
    patterns = [
        path("hooks/", include(inner)),
        re_path(r"^old/", include(([path("notify/", marked, name="hidden")], "old"))),
        path("direct/", marked, name="direct"),
    ]

    found = [(route, pattern.name) for route, pattern in machine_routes(patterns)]

    assert found == [("hooks/notify/<int:n>/", "inner"), ("direct/", "direct")]
    resolver, prefixes = machine_resolver(patterns)
    assert prefixes == ("/hooks/notify/", "/direct/")
    match = resolver.resolve("/hooks/notify/7/")
    assert (match.view_name, match.kwargs) == ("inner:inner", {"n": 7})


def page_headers(response) -> set[str]:
    """The headers the page middleware adds to a response."""
    return {name for name in ("X-Frame-Options", "Content-Security-Policy", "Vary") if name in response.headers}


def test_a_notification_skips_the_page_middleware_and_is_still_handled(client):
    body = json.dumps({"id": "evt_1", "type": "payment.succeeded", "created": int(time.time()), "data": {}}).encode()
    forged = client.post(
        reverse("shops:payment_webhook", args=["sandbox"]),
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: "t=1,v1=00"},
    )
    unknown_rail = client.post(
        reverse("payouts:transfer_notification", args=["nowhere"]), data=b"{}", content_type="application/json"
    )

    assert forged.status_code == 400 and forged.content.startswith(b"refused:")
    assert unknown_rail.status_code == 400
    assert page_headers(forged) == page_headers(unknown_rail) == set()
    assert forged.wsgi_request.resolver_match.view_name == "shops:payment_webhook"
    assert not hasattr(forged.wsgi_request, "session") and not hasattr(forged.wsgi_request, "user")


def test_a_signed_notification_is_applied_through_the_lane_without_a_health_check(client, monkeypatch):
    """Applied as before; its connection is not health-checked first (CONN_HEALTH_CHECKS' round trip before a
    reused connection's first query in each request), while a page's is."""
    from decimal import Decimal

    from django.db import connections

    from shops.models import Order
    from shops.services import payment_start
    from tests.factories import ProductFactory, place_order, shop_with_products

    product = ProductFactory(price=Decimal("19.90"), stock=5)
    order = place_order(shop_with_products(product), {product: 1})
    url = reverse("shops:payment_webhook", args=["sandbox"])
    payment, _ = payment_start(order=order, notify_url="http://testserver" + url, return_url="http://testserver/")
    payload = {
        "id": "evt_lane",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {"payment": payment.reference, "amount": "19.90", "currency": "CNY"},
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    checks = []
    connection = connections["default"]
    connection.ensure_connection()
    monkeypatch.setattr(connection, "health_check_enabled", True)
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)

    connection.health_check_done = False  # as a reused connection is at the start of each request
    response = client.post(
        url, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(body, int(time.time()))}
    )
    lane_checks = len(checks)
    connection.health_check_done = False
    page = client.get(reverse("shops:shop_home", args=[order.shop.slug]))

    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert page.status_code == 200
    assert (lane_checks, len(checks)) == (0, 1)


def test_other_addresses_keep_the_whole_stack(client):
    page = client.get(reverse("home"))
    # The lane's prefix but no route of it: the whole stack answers (here CommonMiddleware's slash redirect).
    near = client.get("/payments/webhook/sandbox")

    assert {"X-Frame-Options", "Content-Security-Policy"} <= page_headers(page)
    assert near.status_code == 301 and "X-Content-Type-Options" in near.headers  # SecurityMiddleware's
    assert hasattr(page.wsgi_request, "session") and hasattr(page.wsgi_request, "user")


def test_a_machine_view_that_fails_is_a_500_from_the_handler(client, monkeypatch):
    import shops.views

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(shops.views, "payment_webhook_receive", broken)
    client.raise_request_exception = False

    response = client.post(
        reverse("shops:payment_webhook", args=["sandbox"]), data=b"{}", content_type="application/json"
    )

    assert response.status_code == 500
