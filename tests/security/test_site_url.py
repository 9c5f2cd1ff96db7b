"""Absolute URLs that leave a request come from SITE_URL, never from the Host header (issue #19, item 6).

Django matches the Host header's name against ALLOWED_HOSTS but not its port: `Host: 127.0.0.1:8199` passes, and a
URL built from the request (`build_absolute_uri`) then points at whatever listens on port 8199.
"""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from shops.models import Order, Payment
from shops.services import share_link_create
from tests.factories import ProductFactory, UserFactory, shop_with_products


class _Listener(ThreadingHTTPServer):
    """A foreign HTTP listener: it records every request it gets and answers 200 (as an attacker's would)."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                listener.requests.append(("POST", self.path))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"thanks")

            do_GET = do_POST

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture
def foreign_listener():
    listener = _Listener()
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    yield listener
    listener.shutdown()
    listener.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_checkout_with_a_forged_host_port_still_pays_through_site_url(live_server, settings, foreign_listener):
    # given: the site is served at SITE_URL, and something else listens on another port of the same host
    settings.SITE_URL = live_server.url
    product = ProductFactory(stock=5)
    shop = shop_with_products(product, slug="forged-host")
    forged = f"127.0.0.1:{foreign_listener.port}"
    buyer = Client(HTTP_HOST=forged)

    # when a buyer checks out and pays with that host and port in the Host header
    buyer.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 2})
    checkout = buyer.post(
        reverse("shops:checkout", args=[shop.slug]),
        {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road"},
    )
    assert checkout.status_code == 302
    paid = buyer.post(checkout["Location"], {"outcome": "succeeded"})  # the sandbox posts its webhook now

    # then the webhook went to SITE_URL (the live server), which applied it, and the buyer is sent back there
    order = Order.objects.get()
    payment = Payment.objects.get(order=order)
    assert payment.notify_url == live_server.url + reverse("shops:payment_webhook", args=["sandbox"])
    assert payment.return_url == live_server.url + reverse("shops:order_detail", args=[order.number])
    assert paid.status_code == 302
    assert paid["Location"] == payment.return_url
    assert foreign_listener.requests == []
    assert (order.status, payment.status) == ("paid", "succeeded")


@pytest.mark.django_db
def test_the_password_reset_email_links_to_site_url_whatever_the_host_header(client, settings):
    settings.SITE_URL = "https://shop.example.com"
    UserFactory(email="forgetful@example.com")

    response = client.post(
        reverse("password_reset"), {"email": "forgetful@example.com"}, headers={"host": "127.0.0.1:8199"}
    )

    assert response.status_code == 302
    [message] = mail.outbox
    links = re.findall(r"\S+://\S+", message.body)
    assert len(links) == 1
    assert re.fullmatch(r"https://shop\.example\.com/password/reset/[^/]+/[^/]+/", links[0]), links
    assert "8199" not in message.body + message.subject
    assert "shop.example.com" in message.subject


@pytest.mark.django_db
def test_share_and_invite_links_and_their_qr_codes_come_from_site_url(client, settings):
    settings.SITE_URL = "https://shop.example.com"
    shop = shop_with_products(ProductFactory())
    link = share_link_create(owner=shop.owner)
    client.force_login(shop.owner.user)
    forged = {"host": "127.0.0.1:8199"}

    links_page = client.get(reverse("members:links"), headers=forged).content.decode()
    dashboard = client.get(reverse("members:dashboard"), headers=forged).content.decode()
    team = client.get(reverse("members:team"), headers=forged).content.decode()

    assert f"https://shop.example.com/l/{link.code}" in links_page
    invite = f"https://shop.example.com/join/{shop.owner.invite_code}/"
    assert invite in dashboard and invite in team
    assert "8199" not in links_page + dashboard + team
