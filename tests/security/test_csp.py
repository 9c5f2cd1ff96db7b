"""The Content Security Policy: every HTML page carries it, and no template needs what it forbids (inline scripts,
inline styles, event-handler attributes, javascript: URLs). tests/e2e/test_csp_browser.py checks the same pages in
a real browser, which reports any violation."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import PASSWORD
from tests.security.site import make_site

TEMPLATES = Path(settings.BASE_DIR) / "templates"
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
INLINE = {
    "a <style> block": re.compile(r"<style\b", re.IGNORECASE),
    "a style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "an event-handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def inline_problems(html: str) -> list[str]:
    problems = [
        f"a <script> without src: {tag}"
        for tag in SCRIPT_TAG.findall(html)
        # data blocks (json_script) are not run, so the CSP does not apply to them
        if "src=" not in tag and "application/json" not in tag
    ]
    problems += [name for name, pattern in INLINE.items() if pattern.search(html)]
    return problems


def test_no_template_has_an_inline_script_style_or_handler():
    found = {
        str(path.relative_to(TEMPLATES)): problems
        for path in sorted(TEMPLATES.rglob("*.html"))
        if (problems := inline_problems(path.read_text()))
    }

    assert found == {}


def test_the_policy_allows_nothing_inline_and_no_framing():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]

    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]


@pytest.mark.django_db
def test_every_html_page_carries_the_policy_and_ours_have_nothing_inline(client):
    site = make_site()
    client.get("/")  # a buyer's cart, so the cart page has a line
    answered = {}

    for path in site.buyer_pages:
        response = client.get(path)
        answered[path] = response.status_code
        assert "script-src 'self'" in response["Content-Security-Policy"], path
        assert inline_problems(response.content.decode()) == [], path
    client.login(username=site.email, password=PASSWORD)
    for path in site.member_pages + site.staff_pages:
        response = client.get(path, follow=True)  # admin's "add a plan simulation" sends to the back-office page
        answered[path] = response.status_code
        if response.status_code != 200:
            continue  # listed by the last assertion
        assert "script-src 'self'" in response["Content-Security-Policy"], path
        if not path.startswith(("/admin/", "/api/")):  # Django admin's own templates are checked in the browser test
            assert inline_problems(response.content.decode()) == [], path

    assert {path: status for path, status in answered.items() if status != 200} == {}


@pytest.mark.django_db
def test_error_pages_carry_the_policy_too(client):
    assert "script-src 'self'" in client.get("/s/no-such-shop/")["Content-Security-Policy"]
    assert "script-src 'self'" in client.get("/l/nosuchcode")["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_api_docs_load_their_start_up_script_from_a_url(client):
    html = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert '<script src="/api/docs/?script="></script>' in html
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
