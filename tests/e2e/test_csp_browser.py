"""The Content Security Policy in a real browser: Chromium visits every kind of page (storefront, checkout, login,
dashboard, links and payout account pages, Django admin, the back office, the API docs) and reports no violation,
and the scripts moved out of the templates still work."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from tests.security.site import make_site

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Registered before any page script runs (Playwright injects it outside the page's CSP).
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${where}`);
});
"""


def test_no_page_violates_the_content_security_policy(live_server, chromium):
    site = make_site()
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console = []
    page.on("console", lambda message: console.append(message.text))
    violations = {}

    def visit(path, wait_for=None):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        if wait_for:
            page.wait_for_selector(wait_for)
        # "load": the page's scripts, styles and images are in (and refused, if the policy refuses them). Not
        # "networkidle", which waits half a second of quiet on each of the ~100 pages.
        page.wait_for_load_state("load")
        found = page.evaluate("window.__cspViolations") + [
            text for text in console if "Content Security Policy" in text
        ]
        console.clear()
        if found:
            violations[path] = found

    # a buyer: shop, product, cart, checkout
    for path in site.buyer_pages:
        visit(path)
    product = site.shop.listings.first().product
    page.goto(f"{live_server.url}{reverse('shops:product_detail', args=[site.shop.slug, product.pk])}")
    page.get_by_role("button", name="Add to cart").click()
    visit(reverse("shops:cart", args=[site.shop.slug]))
    visit(reverse("shops:checkout", args=[site.shop.slug]))

    # the member (a superuser too) logs in through the login page
    page.goto(f"{live_server.url}{reverse('login')}")
    page.get_by_label("Email or phone").fill(site.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{reverse('members:dashboard')}")
    for path in site.member_pages:
        visit(path)
    for path in site.staff_pages:
        visit(path, wait_for=".swagger-ui .info" if path == reverse("api-docs") else None)

    # the scripts that used to be inline still run: the payout form shows only the chosen method's fields
    visit(reverse("members:payout_account"))
    page.select_option("#id_method", "alipay")
    assert page.locator('[data-field="alipay_account"]').is_visible()
    assert page.locator('[data-field="account_number"]').is_hidden()
    # and the stylesheet applies (the brand colour on the header link)
    assert page.evaluate("getComputedStyle(document.querySelector('a.brand')).color") == "rgb(207, 42, 51)"  # --brand
    context.close()

    assert violations == {}
