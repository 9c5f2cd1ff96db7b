"""The error pages a person can meet (400, 403, a form's expired CSRF token, 404, 500) are the site's own, in the
visitor's language, with the site's stylesheet and icons and a way back home; and the app icon is served."""

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views import defaults

pytestmark = pytest.mark.django_db

CHINESE = "zh-CN,zh;q=0.9,en;q=0.5"


def assert_site_page(html: str, code: str) -> None:
    assert f'<p class="error-code" aria-hidden="true">{code}</p>' in html
    assert "/static/css/site.css" in html
    assert "/static/icons/favicon.svg" in html and "/static/icons/apple-touch-icon.png" in html
    assert f'href="{reverse("home")}"' in html


@pytest.mark.parametrize(
    ("language", "heading"),
    [("en", "We could not find this page"), (CHINESE, "我们找不到这个页面")],
)
def test_an_unknown_shop_is_the_sites_404_in_the_visitors_language(client, language, heading):
    response = client.get(reverse("shops:shop_home", args=["no-such-shop"]), HTTP_ACCEPT_LANGUAGE=language)

    html = response.content.decode()
    assert response.status_code == 404
    assert heading in html
    assert_site_page(html, "404")


@pytest.mark.parametrize(
    ("language", "heading"),
    [("en", "This form has expired"), (CHINESE, "表单已过期")],
)
def test_a_form_sent_without_its_csrf_token_is_the_sites_403(language, heading):
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("login"), {"username": "a@example.com"}, HTTP_ACCEPT_LANGUAGE=language)

    html = response.content.decode()
    assert response.status_code == 403
    assert heading in html
    assert_site_page(html, "403")


@pytest.mark.parametrize(
    ("language", "heading", "view", "code"),
    [
        ("en", "This page is not open to you", "permission_denied", "403"),
        ("zh-hans", "您无权查看此页面", "permission_denied", "403"),
        ("en", "Something went wrong on our side", "server_error", "500"),
        ("zh-hans", "我们这边出了问题", "server_error", "500"),
        ("en", "This request could not be understood", "bad_request", "400"),
    ],
)
def test_the_handlers_render_the_sites_pages(language, heading, view, code):
    request = RequestFactory().get("/somewhere/")
    with translation.override(language):
        if view == "server_error":  # rendered without a context: no request, no database
            response = defaults.server_error(request)
        else:
            response = getattr(defaults, view)(request, PermissionDenied("no"))
        html = response.content.decode()

    assert response.status_code == int(code)
    assert heading in html
    assert_site_page(html, code)


def test_the_favicon_address_leads_to_the_app_icon_and_pages_name_their_icons(client):
    favicon = client.get("/favicon.ico")
    home = client.get(reverse("home")).content.decode()

    assert favicon.status_code == 302
    assert favicon["Location"] == "/static/icons/favicon-32.png"
    assert "max-age=86400" in favicon["Cache-Control"]
    assert '<link rel="icon" href="/static/icons/favicon.svg" type="image/svg+xml">' in home
    for name in ("icons/favicon.svg", "icons/favicon-32.png", "icons/apple-touch-icon.png"):
        assert finders.find(name), name


DEBUG_404 = "config.middleware.SitePagesForNotFoundInDebugMiddleware"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/s/no-such-shop/", "/no-such-page/"])
def test_in_development_an_unknown_page_gets_the_sites_404_not_the_url_table(client, settings, path):
    # `make run` runs with DEBUG: an unknown shop (a view's 404) or address (no URL matched) shows the site's page.
    settings.DEBUG = True
    settings.MIDDLEWARE = (
        [*settings.MIDDLEWARE, DEBUG_404] if DEBUG_404 not in settings.MIDDLEWARE else settings.MIDDLEWARE
    )

    response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")

    html = response.content.decode()
    assert response.status_code == 404
    assert_site_page(html, "404")
    assert "URLconf" not in html and "Using the URLconf" not in html


@pytest.mark.django_db
def test_in_development_the_technical_404_stays_one_setting_away_and_the_api_keeps_json(client, settings):
    settings.DEBUG = True
    settings.MIDDLEWARE = (
        [*settings.MIDDLEWARE, DEBUG_404] if DEBUG_404 not in settings.MIDDLEWARE else settings.MIDDLEWARE
    )
    api = client.get("/api/v1/no-such-thing/")
    settings.DEBUG_TECHNICAL_404 = True
    technical = client.get("/no-such-page/")

    assert api.status_code == 404 and api["Content-Type"].startswith("application/json")
    assert technical.status_code == 404 and "URLconf" in technical.content.decode()
    assert client.get("/dashboard").status_code == 301  # a missing slash is still added first
