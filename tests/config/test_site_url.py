"""SITE_URL: the one origin absolute URLs are built from (core/site_url.py), and the system check that wants it in
production, well formed, among ALLOWED_HOSTS and on HTTPS."""

import pytest

from core.site_url import absolute_url, check_site_url, site_url_problem
from tests.security.test_deployment import run


def test_absolute_url_joins_site_url_and_a_path(settings):
    settings.SITE_URL = "https://shop.example.com/"

    assert absolute_url("/s/demo/") == "https://shop.example.com/s/demo/"
    with pytest.raises(ValueError):
        absolute_url("s/demo/")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://shop.example.com", None),
        ("http://127.0.0.1:8000", None),
        ("https://shop.example.com/", None),
        ("shop.example.com", "it must start with http:// or https://"),
        ("ftp://shop.example.com", "it must start with http:// or https://"),
        ("https://", "it names no host"),
        ("https://shop.example.com/shop/", "it must be an origin only"),
        ("https://shop.example.com?x=1", "it must be an origin only"),
        ("https://user:pw@shop.example.com", "it must not carry a user name or password"),
        ("https://shop.example.com:99999", "it is not a URL"),
    ],
)
def test_site_url_must_be_an_http_origin(value, problem):
    found = site_url_problem(value)

    assert (found is None, (found or "").startswith(problem or "")) == (problem is None, True), found


def _check_ids(settings, **values) -> list[str]:
    for name, value in values.items():
        setattr(settings, name, value)
    return [message.id for message in check_site_url(None)]


def test_the_check_wants_site_url_in_production_well_formed_allowed_and_https(settings):
    settings.ALLOWED_HOSTS = ["shop.example.com"]

    assert _check_ids(settings, DEBUG=True, SITE_URL="") == []
    assert _check_ids(settings, DEBUG=False, SITE_URL="") == ["config.E101"]
    assert _check_ids(settings, DEBUG=False, SITE_URL="shop.example.com") == ["config.E102"]
    assert _check_ids(settings, DEBUG=False, SITE_URL="https://elsewhere.example.com") == ["config.E103"]
    assert _check_ids(settings, DEBUG=False, SITE_URL="http://shop.example.com") == ["config.W101"]
    assert _check_ids(settings, DEBUG=False, SITE_URL="https://shop.example.com:8443") == []
    assert _check_ids(settings, DEBUG=True, SITE_URL="http://shop.example.com") == []


def test_production_without_site_url_fails_the_checks_and_migrate():
    result = run(["manage.py", "check", "--deploy"], SITE_URL="")

    assert result.returncode != 0
    assert "config.E101" in result.stderr + result.stdout
    assert "SITE_URL is not set." in result.stderr + result.stdout


def test_development_defaults_to_where_make_run_serves():
    result = run(["-c", "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"],
                 DEBUG="1", SITE_URL="")  # fmt: skip
    assert result.returncode == 0, result.stderr

    assert result.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8000"
