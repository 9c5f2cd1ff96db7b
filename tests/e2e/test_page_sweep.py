"""Every page a buyer, a member and staff see, photographed and checked in a real browser (issue #23, "Proof").

One data set (the demo's people, shops, orders in several states and money, plus a share link, notifications, a
webhook endpoint with a delivery, an API token and a plan simulation) is built once for the module; then one
Chromium visits every page of the catalogue below in English and Chinese at 375 and 1280 px and

- saves a full-page screenshot to artifacts/screens/<lang>/<width>/<page>.png (CI keeps artifacts/);
- looks, in the page, for a horizontal scroll, a number or money figure broken across lines and text overflowing
  its box (`LAYOUT_CHECKS`);
- runs axe-core (node_modules/axe-core, `npm ci`) at 375 px in both languages: no serious or critical violation;
- at 375 px in English (and the shop's home at 1280 px) adds up the CSS, JavaScript and fonts the page loads,
  gzip-compressed (level 6: the live server does not compress), and reads the Largest Contentful Paint from
  Chromium's performance timeline: at most 150 KB and 1.5 s (artifacts/page-weight.txt).

Every finding of every page is collected first and asserted at the end, one readable list per kind, so one run
shows everything. The catalogue is checked against the URLconf: a new page with no entry here (and no reason in
`EXCLUDED`) fails `test_every_page_is_in_the_catalogue`.
"""

import gzip
import importlib
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connections
from django.test import Client, override_settings
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.services import token_create
from commissions.approvals import plan_activate_request
from commissions.models import CommissionEntry
from commissions.services import plan_activate, plan_create, plan_in_force, policy_in_force, policy_publish
from commissions.simulation import plan_simulation_create
from config.celery import app as celery_app
from members.webhooks.models import Delivery, Endpoint, Event
from payouts.models import Withdrawal
from payouts.selectors import member_balance
from referrals.models import Member
from shops.cart import Cart, remember_order
from shops.models import Order, Payment, Product, Shop
from shops.services import share_link_create, shop_close_announce
from tests.config.test_public_surface import routes
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

# One sweep (the module-scoped fixture below, minutes of browsing) feeds all the tests here: under pytest-xdist
# `make test` runs a file's tests on one worker (--dist loadfile), or each worker would sweep again.
pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
# Visit only these pages (comma-separated names), to look at a few pages' screenshots while working on them; the
# catalogue checks still see every page. Unset in CI.
ONLY = {name for name in os.environ.get("PAGE_SWEEP_ONLY", "").split(",") if name}
SCREENS = ARTIFACTS / "screens"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LANGUAGES = ("en", "zh-hans")
WIDTHS = (375, 1280)
HEIGHT = 800
AXE_WIDTHS = (375,)  # 1280 too when the time allows: see docs/design.md, "Proof"
WEIGHT_LIMIT_KB = 150
LCP_LIMIT_MS = 1500
ASSET_TYPES = {".css": "css", ".js": "js", ".woff2": "font", ".woff": "font", ".ttf": "font", ".otf": "font"}


@dataclass(frozen=True)
class Page:
    name: str  # the screenshot's file name
    role: str  # whose browser: buyer (no login), member, staff, or clerk (staff without permissions)
    path: str
    status: int = 200
    weigh_wide: bool = False  # also weighed at 1280 px
    forged: bool = False  # the page's form sent without its CSRF cookie: the expired-form page (403)

    @property
    def route(self) -> str:
        return route_of(self.path)


def route_of(path: str) -> str:
    """The URL pattern that serves `path`, as the URLconf spells it; the path itself when none does (a 404)."""
    try:
        return resolve(path.split("?")[0]).route
    except Resolver404:
        return path


# Patterns that exist only when the URLconf was first loaded with DEBUG on (django.conf.urls.static): whether they
# are there depends on which test loaded it first.
ONLY_IN_DEVELOPMENT = {r"\^media/.*": "uploaded files (pictures) served by the development server, as they are"}

# URL patterns with no page in the catalogue, each with its reason. A pattern is a regular expression matched
# against the route as the URLconf spells it (tests/config/surface/urls.txt).
EXCLUDED = {
    r"api/.*": "the JSON API and its schema (machine endpoints: tests/api, the OpenAPI snapshot); api/docs/ is "
    "drf-spectacular's Swagger UI, not a page of the design system",
    r"admin/\w+/\w+/((<path:object_id>/((change|delete|history)/)?)|add/)?": "Django admin's generic pages: "
    "the main changelists and a change form in the catalogue stand for them",
    r"admin/\(\?P<url>\.\*\)\$": "the admin's catch-all (its own 404)",
    r"admin/\^\(\?P<app_label>.*": "the admin's app index pages (Django's own, like the index)",
    r"admin/(autocomplete|jsi18n)/": "machine endpoints of the admin (JSON, JavaScript)",
    r"admin/(login|logout|password_change)/": "Django admin's own login, logout (POST) and password change",
    r"admin/accounts/user/<id>/password/": "Django admin's own password form",
    r"admin/r/.*": "the admin's redirect to an object on the site",
    r"admin/\^(networks|referrals)/\(\?P<model>.*": "redirects from the admin addresses of models that moved to shops",
    r"admin/commissions/commissionentry/order-split/": "a redirect (?order=<number> to the order's split page, "
    "which is in the catalogue)",
    r"admin/back-office/compliance/csv/": "a download (CSV)",
    r"admin/staff/taxreport/<int:report_id>/download/<str:file_format>/": "a download (the tax report's XLSX or CSV, "
    "audited)",
    r"admin/staff/evidencepack/<int:pack_id>/download/": "a download (the evidence pack's ZIP, audited)",
    r"admin/accounts/approvalrequest/<int:request_id>/decide/": "POST only (a decision on the request's page)",
    r"dashboard/payouts/statement\.csv": "a download (CSV)",
    r"dashboard/payouts/income/<int:year>\.(csv|pdf)": "a download (CSV, PDF)",
    r"dashboard/identity/(check|business)/": "POST only",
    r"dashboard/account/export/": "POST only (a download: the member's data as a ZIP)",
    r"\^dashboard/.*qr.*": "a download (QR code image)",
    r"dashboard/share/.*poster\.png": "a download (poster image)",
    r"favicon\.ico": "an image",
    r"healthz": "a machine endpoint (liveness probe: plain text)",
    r"readyz": "a machine endpoint (readiness probe: JSON, text or the library's page)",
    r"i18n/setlang/": "POST only (the language form)",
    r"logout/": "POST only",
    r"dashboard/links/<int:link_id>/deactivate/": "POST only",
    r"dashboard/notifications/(read/|<int:notification_id>/read/)": "POST only",
    r"dashboard/team/leaderboard/name/": "POST only",
    r"dashboard/webhooks/<int:endpoint_id>/(rotate|toggle|delete)/": "POST only",
    r"dashboard/webhooks/deliveries/<int:delivery_id>/replay/": "POST only",
    r"dashboard/payouts/withdrawals/<int:withdrawal_id>/(cancel|transfer)/": "POST only",
    r"dashboard/payouts/withdrawals/<int:withdrawal_id>/invoice/<int:invoice_id>/file/": "a download (invoice file)",
    r"admin/payouts/invoice/<int:invoice_id>/file/": "a download (invoice file)",
    r"account/tokens/<int:token_id>/revoke/": "POST only",
    r"orders/<str:number>/(pay|cancel)/": "POST only",
    r"orders/<str:number>/state/": "a machine endpoint (JSON for the paying page's script)",
    r"orders/<str:number>/paying/": "a step that only exists with a payment under way at a real provider "
    "(WeChat Pay QR, JSAPI); with the sandbox it sends the browser on",
    r"orders/by-phone/list/": "needs a phone proved with a code sent by SMS; the form before it is in the catalogue",
    r"dashboard/payouts/account/wechat/": "a redirect to WeChat's OAuth",
    r"wechat/oauth/return/": "WeChat's OAuth return (a redirect)",
    r"payments/webhook/<str:provider>/": "a machine endpoint (payment providers' notifications)",
    r"payouts/notify/<str:rail>/": "a machine endpoint (payout providers' notifications)",
    r"dashboard/shop/address/": "a machine endpoint (JSON: the address check as it is typed)",
    r"account/logins/(phone/remove|wechat/bind|wechat/<int:account_id>/unbind)/": "POST only",
    r"join/(<str:invite_code>/)?wechat/": "POST only (a redirect to WeChat's login)",
    r"login/wechat/": "POST only (a redirect to WeChat's login)",
    r"login/wechat/callback/": "WeChat's OAuth return (a redirect)",
}


# ---------------------------------------------------------------------------------------------------------------
# The data


def _defaults_restored() -> None:
    """A transactional test before this module emptied the tables the migrations fill: put them back."""
    if plan_in_force() is None or policy_in_force() is None:
        importlib.import_module("commissions.migrations.0002_default_policy_and_plan").create_defaults(
            django_apps, None
        )
    importlib.import_module("networks.migrations.0002_networks").create(django_apps, None)


def build_data() -> dict:
    from io import StringIO

    _defaults_restored()
    call_command("demo", stdout=StringIO())
    User = get_user_model()
    founder = Member.objects.select_related("user").get(user__email="founder@example.com")
    shop = Shop.objects.get(owner=founder)
    listed = list(Product.objects.filter(listings__shop=shop).order_by("pk")[:2])
    link = share_link_create(owner=founder, product=listed[0], campaign="spring")
    token_create(user=founder.user, name="Bookkeeping")
    endpoint = Endpoint.objects.create(
        owner=founder,
        url="https://hooks.example.com/micro-shop",
        event_types=["order.paid", "commission.pending"],
        description="Bookkeeping",
    )
    event = Event.objects.create(type="order.paid", key="sweep-1", data={"order": "sample"})
    delivery = Delivery.objects.create(
        event=event, endpoint=endpoint, status="failed", attempt_count=3, failures=3, last_status_code=502
    )
    member_orders = Order.objects.filter(shop=shop).order_by("-pk")
    paid = member_orders.filter(paid_at__isnull=False).first()
    pending = member_orders.filter(status=Order.Status.PENDING_PAYMENT).first()
    entry = CommissionEntry.objects.filter(beneficiary=founder).order_by("-pk").first()
    payment = None
    if pending is not None:
        payment = Payment.objects.create(
            order=pending,
            provider="sandbox",
            method="hosted",
            reference="sweep-sandbox-1",
            amount=pending.total,
            notify_url="https://shop.example.com/payments/webhook/sandbox/",
            return_url="https://shop.example.com/",
        )
    staff = User.objects.get(email="admin@example.com")
    simulation = plan_simulation_create(
        actor=staff,
        name="Ten per cent",
        rates=["0.10", "0.05"],
        policy_overrides={},
        date_from=date.today() - timedelta(days=60),
        date_to=date.today(),
    )
    clerk = User.objects.create_user("clerk@example.com", "x", first_name="Clerk", is_staff=True)
    # Four eyes: another staff member asked for a draft plan to be put in force; the sweep's staff user decides
    asker = User.objects.create_user("asker@example.com", "x", first_name="Asker", is_staff=True, is_superuser=True)
    draft = plan_create(actor=asker, name="Spring", rates=(Decimal("0.7000"), Decimal("0.3000")))
    approval = plan_activate_request(
        plan=draft,
        actor=asker,
        reason="Spring rates agreed with finance",
        effective_from=timezone.now() + timedelta(days=14),
    )
    # The rules page (issue #25): an earlier policy version (v1, the migration's) and a plan announced for later
    with override_settings(RULES_CHANGE_NOTICE_DAYS=0):  # in force at once, so v1 is history (the module's data)
        policy_publish(actor=staff, note="Shares of ineligible members roll up", ineligible_share="roll_up")
    summer = plan_create(actor=asker, name="Summer", rates=(Decimal("0.6000"), Decimal("0.4000")))
    plan_activate(plan=summer, actor=staff, effective_from=timezone.now() + timedelta(days=10))
    other = Member.objects.exclude(pk=founder.pk).select_related("user").order_by("pk").first()
    # Two other members' shops that stop (issue #24): one in its closing notice, one closed after it.
    closing, closed = Shop.objects.exclude(owner=founder).order_by("pk")[:2]
    shop_close_announce(shop=closing, actor=None, reason="The owner closed the shop.")
    shop_close_announce(
        shop=closed, actor=None, reason="The owner closed the shop.", now=timezone.now() - timedelta(days=31)
    )

    # The buyer's browser: two products in the cart, and the orders it placed
    buyer = SessionStore()
    cart = Cart(buyer, shop.pk)
    for product in listed:
        cart.add(product.pk, 2)
    for order in (paid, pending):
        if order is not None:
            remember_order(buyer, order.number)
    buyer.create()

    # A withdrawal to a business payee, written directly: its invoice page (docs/tax.md, "Business payees"). Half
    # of what the founder may withdraw, so the pages that show the balance (close account, withdraw) show the
    # demo's real figures, never an overdrawn one.
    withdrawable = member_balance(founder).withdrawable
    assert withdrawable >= Decimal("2.00"), f"the demo founder has only {withdrawable} to withdraw"
    business_withdrawal = Withdrawal.objects.create(
        member=founder,
        amount=(withdrawable / 2).quantize(Decimal("0.01")),
        account={
            "method": "bank",
            "holder_name": "示例科技有限公司",
            "company_name": "示例科技有限公司",
            "credit_code": "91350100M000100Y43",
        },
        payee_kind=Withdrawal.PayeeKind.BUSINESS,
        status=Withdrawal.Status.REQUESTED,
        idempotency_key="sweep-business-1",
    )
    assert member_balance(founder).withdrawable >= 0

    sessions = {"buyer": buyer.session_key, "anonymous": ""}
    for role, user in (("member", founder.user), ("staff", staff), ("clerk", clerk)):
        client = Client()
        client.force_login(user)
        sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "founder": founder,
        "shop": shop,
        "products": listed,
        "link": link,
        "endpoint": endpoint,
        "delivery": delivery,
        "paid": paid,
        "pending": pending,
        "entry": entry,
        "payment": payment,
        "simulation": simulation,
        "approval": approval,
        "other": other,
        "closing_shop": closing,
        "closed_shop": closed,
        "withdrawal": Withdrawal.objects.filter(member=founder).exclude(pk=business_withdrawal.pk).first(),
        "business_withdrawal": business_withdrawal,
        "sessions": sessions,
    }


def catalogue(data: dict) -> list[Page]:
    shop, founder, product = data["shop"], data["founder"], data["products"][0]
    paid, pending = data["paid"], data["pending"]
    user = founder.user
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    reset_token = default_token_generator.make_token(user)
    pages = [
        # buyers
        Page("home", "buyer", reverse("home")),
        Page("shop-home", "buyer", reverse("shops:shop_home", args=[shop.slug]), weigh_wide=True),
        Page("product", "buyer", reverse("shops:product_detail", args=[shop.slug, product.pk])),
        Page("cart", "buyer", reverse("shops:cart", args=[shop.slug])),
        Page("checkout", "buyer", reverse("shops:checkout", args=[shop.slug])),
        Page("order-paid", "buyer", reverse("shops:order_detail", args=[paid.number])),
        Page("order-lookup", "buyer", reverse("shops:order_lookup")),
        Page("orders-by-phone", "buyer", reverse("shops:orders_by_phone")),
        Page("shop-closing", "buyer", reverse("shops:shop_home", args=[data["closing_shop"].slug])),
        Page("shop-closed", "buyer", reverse("shops:shop_home", args=[data["closed_shop"].slug]), status=410),
        Page("link-not-found", "buyer", reverse("share_link", args=["nosuchlink"]), status=404),
        Page("not-found", "buyer", "/no-such-page/", status=404),
        Page("login", "anonymous", reverse("login")),
        Page("csrf-failure", "anonymous", reverse("login"), status=403, forged=True),
        Page("rules", "anonymous", reverse("members:rules")),
        Page("rules-version", "anonymous", reverse("members:rules_version", args=[1, 1])),
        Page("join", "anonymous", reverse("members:join")),
        Page("join-invite", "anonymous", reverse("members:join_with_code", args=[founder.invite_code])),
        Page("join-phone", "anonymous", reverse("members:join_phone")),
        Page("join-invite-phone", "anonymous", reverse("members:join_phone_with_code", args=[founder.invite_code])),
        Page("login-code", "anonymous", reverse("login_code")),
        Page("password-reset", "anonymous", reverse("password_reset")),
        Page("password-reset-done", "anonymous", reverse("password_reset_done")),
        Page("password-reset-confirm", "anonymous", reverse("password_reset_confirm", args=[uid, reset_token])),
        Page("password-reset-complete", "anonymous", reverse("password_reset_complete")),
        # members
        Page("dashboard", "member", reverse("members:dashboard")),
        Page("team", "member", reverse("members:team")),
        Page("leaderboard", "member", reverse("members:leaderboard")),
        Page("my-shop", "member", reverse("members:my_shop")),
        Page("my-shop-products", "member", reverse("members:my_shop_products")),
        Page("my-shop-catalogue", "member", reverse("members:my_shop_catalogue")),
        Page("my-shop-networks", "member", reverse("members:my_shop_networks")),
        Page("links", "member", reverse("members:links")),
        Page("orders", "member", reverse("members:orders")),
        Page("order-detail", "member", reverse("members:order_detail", args=[paid.number])),
        Page("share-product", "member", reverse("members:share_product", args=[product.pk])),
        Page("share-shop", "member", reverse("members:share_shop")),
        Page("share-invite", "member", reverse("members:share_invite")),
        Page("invite-poster", "member", reverse("members:invite_poster_page")),
        Page("link-poster", "member", reverse("members:link_poster_page", args=[data["link"].pk])),
        Page("commissions", "member", reverse("members:commission_entries")),
        Page("commission-detail", "member", reverse("members:commission_entry_detail", args=[data["entry"].pk])),
        Page("notifications", "member", reverse("members:notifications")),
        Page("notification-settings", "member", reverse("members:notification_settings")),
        Page("payouts", "member", reverse("members:payouts")),
        Page("payout-account", "member", reverse("members:payout_account")),
        Page("wechat-bind-refused", "member", reverse("members:payout_account_wechat_return"), status=400),
        Page("statement", "member", reverse("members:payout_statement")),
        Page("income-statement", "member", reverse("members:income_statement")),
        Page("identity", "member", reverse("members:identity")),
        Page("your-data", "member", reverse("members:account")),
        Page("shop-close", "member", reverse("members:shop_close")),
        Page("account-close", "member", reverse("members:account_close")),
        Page(
            "withdrawal-invoice",
            "member",
            reverse("members:withdrawal_invoice", args=[data["business_withdrawal"].pk]),
        ),
        Page("webhooks", "member", reverse("members:webhooks")),
        Page("webhook-endpoint", "member", reverse("members:webhook_endpoint", args=[data["endpoint"].pk])),
        Page("webhook-delivery", "member", reverse("members:webhook_delivery", args=[data["delivery"].pk])),
        Page("account", "member", reverse("accounts:profile")),
        Page("tokens", "member", reverse("accounts:tokens")),
        Page("logins", "member", reverse("accounts:logins")),
        Page("logins-phone", "member", reverse("accounts:logins-phone")),
        Page("password-change", "member", reverse("password_change")),
        Page("password-change-done", "member", reverse("password_change_done")),
        # staff
        Page("admin", "staff", reverse("admin:index")),
        Page("admin-orders", "staff", reverse("admin:shops_order_changelist")),
        Page("admin-order", "staff", reverse("admin:shops_order_change", args=[paid.pk])),
        Page("admin-members", "staff", reverse("admin:referrals_member_changelist")),
        Page("admin-products", "staff", reverse("admin:shops_product_changelist")),
        Page("admin-commissions", "staff", reverse("admin:commissions_commissionentry_changelist")),
        Page("admin-withdrawals", "staff", reverse("admin:payouts_withdrawal_changelist")),
        Page("admin-users", "staff", reverse("admin:accounts_user_changelist")),
        Page("admin-reconcile", "staff", reverse("admin:staff_reconciliationrun_reconcile")),
        Page("admin-create-batch", "staff", reverse("admin:payouts_withdrawal_create_batch")),
        Page("admin-invoices", "staff", reverse("admin:payouts_invoice_changelist")),
        Page("admin-adjust-balance", "staff", reverse("admin:payouts_balanceadjustment_add")),
        Page("admin-report-upload", "staff", reverse("admin:networks_reportimport_upload")),
        Page("admin-tax-reports", "staff", reverse("admin:staff_taxreport_changelist")),
        Page("admin-tax-report-generate", "staff", reverse("admin:staff_taxreport_generate")),
        Page("admin-evidence-packs", "staff", reverse("admin:staff_evidencepack_changelist")),
        Page("admin-evidence-pack-generate", "staff", reverse("admin:staff_evidencepack_generate")),
        Page("admin-shop-owner", "staff", reverse("admin:shops_shop_change_owner", args=[shop.pk])),
        Page("admin-approvals", "staff", reverse("admin:accounts_approvalrequest_changelist")),
        Page("admin-tax-reports", "staff", reverse("admin:staff_taxreport_changelist")),
        Page("admin-approval", "staff", reverse("admin:accounts_approvalrequest_change", args=[data["approval"].pk])),
        Page("back-office-overview", "staff", reverse("staff:overview")),
        Page("back-office-audit", "staff", reverse("staff:audit_log")),
        Page("back-office-leaderboard", "staff", reverse("staff:leaderboard")),
        Page("back-office-compliance", "staff", reverse("staff:compliance_report")),
        Page("back-office-simulations", "staff", reverse("staff:simulation_list")),
        Page("back-office-simulation-new", "staff", reverse("staff:simulation_create")),
        Page("back-office-simulation", "staff", reverse("staff:simulation_detail", args=[data["simulation"].pk])),
        Page("styleguide", "staff", reverse("styleguide")),
        Page("forbidden", "clerk", reverse("staff:overview"), status=403),
    ]
    if pending is not None:
        pages.append(Page("order-pending", "buyer", reverse("shops:order_detail", args=[pending.number])))
    if data["payment"] is not None:
        pages.append(Page("sandbox-pay", "buyer", reverse("shops:sandbox_pay", args=[data["payment"].reference])))
    if paid is not None:
        order_split = reverse("admin:commissions_order_split", args=[paid.pk])
        pages.append(Page("admin-order-split-order", "staff", order_split))
    return pages


# ---------------------------------------------------------------------------------------------------------------
# The checks run in the page


LAYOUT_CHECKS = r"""
() => {
  const SCROLLERS = '.scroll, .table-wrap, .tabs, .subnav, pre, code, textarea, input, select';
  const HIDDEN = '.visually-hidden, .sr-only, [hidden]';
  // Read by screen readers only: clipped to nothing (a stacked table's header row on a phone, .visually-hidden).
  const clipped = [...document.body.querySelectorAll('*')].filter((el) => {
    const style = getComputedStyle(el);
    return style.clipPath !== 'none' || style.clip !== 'auto' || style.visibility === 'hidden';
  });
  const hidden = (el) => el.closest(HIDDEN) !== null || clipped.some((box) => box.contains(el));
  const NUMBERS = '.money, .num, .amount, .price, .stat b';
  const MONEY = /[¥￥]\s?-?\d[\d,]*(\.\d+)?/g;
  const describe = (el) => {
    const parts = [];
    for (let node = el; node && node !== document.body && parts.length < 3; node = node.parentElement) {
      let part = node.tagName.toLowerCase();
      if (node.id) part += '#' + node.id;
      const classes = [...node.classList].slice(0, 2);
      if (classes.length) part += '.' + classes.join('.');
      parts.unshift(part);
      if (node.id) break;
    }
    return parts.join(' > ');
  };
  const text = (s) => s.replace(/\s+/g, ' ').trim().slice(0, 60);
  const lines = (rects) => {
    const boxes = [...rects].filter((r) => r.width > 0 && r.height > 0).sort((a, b) => a.top - b.top);
    let count = 0, bottom = -Infinity;
    for (const r of boxes) {
      if (r.top >= bottom - 2) { count += 1; bottom = r.bottom; } else { bottom = Math.max(bottom, r.bottom); }
    }
    return count;
  };
  const findings = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    const wide = [...document.body.querySelectorAll('*')].filter((el) => {
      if (el.closest(SCROLLERS) || hidden(el)) return false;
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.right > root.clientWidth + 1;
    });
    const outermost = wide.filter((el) => !wide.includes(el.parentElement)).slice(0, 4);
    findings.push({kind: 'horizontal scroll', selector: outermost.map(describe).join(' | ') || 'html',
                   text: `page ${root.scrollWidth}px wide in a ${root.clientWidth}px window`});
  }
  const checked = new Set();
  for (const el of document.querySelectorAll(NUMBERS)) {
    const t = el.textContent.trim();
    if (!/\d/.test(t) || t.length > 32 || hidden(el)) continue;
    checked.add(el);
    const range = document.createRange();
    range.selectNodeContents(el);
    const n = lines(range.getClientRects());
    if (n > 1) findings.push({kind: 'number broken', selector: describe(el), text: `${text(t)} (${n} lines)`});
  }
  // A short label (a button, a tab, a label, a table heading, a badge) broken across lines: in Chinese that is one
  // character per line ("取" over "消"), the defect the issue saw on narrow columns.
  const LABELS = 'button, .button, label, th, .badge, .tabs a, .tabbar a, .subnav a, .nav-link';
  for (const el of document.querySelectorAll(LABELS)) {
    const t = el.textContent.replace(/\s+/g, ' ').trim();
    if (!t || t.length > 8 || hidden(el) || el.closest('#changelist, .results, .module')) continue;
    // Each run of its words on its own: an icon above the words (the tab bar) is not a broken label.
    const words = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = words.nextNode(); node; node = words.nextNode()) {
      if (!node.data.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const n = lines(range.getClientRects());
      if (n > 1) {
        findings.push({kind: 'label broken', selector: describe(el), text: `${text(t)} (${n} lines)`});
        break;
      }
    }
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('script, style') || hidden(parent) || parent.closest(NUMBERS)) continue;
    for (const match of node.data.matchAll(MONEY)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const n = lines(range.getClientRects());
      if (n > 1) findings.push({kind: 'number broken', selector: describe(parent), text: `${match[0]} (${n} lines)`});
    }
  }
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest(SCROLLERS) || el.closest('svg') || hidden(el)) continue;
    const own = [...el.childNodes].filter((c) => c.nodeType === 3).map((c) => c.data).join('').trim();
    if (!own) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    // Its own text runs past its box (scrollWidth alone would count an absolutely placed child too).
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && style.overflowX === 'visible') {
      const rect = el.getBoundingClientRect(), range = document.createRange();
      let spill = 0;
      for (const child of el.childNodes) {
        if (child.nodeType !== 3 || !child.data.trim()) continue;
        range.selectNodeContents(child);
        for (const r of range.getClientRects()) {
          if (r.width > 0) spill = Math.max(spill, r.right - rect.right, rect.left - r.left);
        }
      }
      if (spill > 1) {
        findings.push({kind: 'text overflows', selector: describe(el),
                       text: `${text(own)} (runs ${Math.round(spill)}px past its ${el.clientWidth}px box)`});
        continue;
      }
    }
    // A box with text that is wider than the block it sits in (a badge, a link that does not wrap): a badge
    // placed on purpose over an icon (position absolute) is not.
    if (style.position === 'absolute' || style.position === 'fixed') continue;
    let box = el.parentElement;
    while (box && getComputedStyle(box).display.startsWith('inline')) box = box.parentElement;
    if (!box || getComputedStyle(box).overflowX !== 'visible') continue;
    const outer = box.getBoundingClientRect(), inner = el.getBoundingClientRect();
    const out = Math.round(Math.max(inner.right - outer.right, outer.left - inner.left));
    if (inner.width > 0 && out > 1) {
      findings.push({kind: 'text overflows', selector: describe(el),
                     text: `${text(own)} (sticks out of ${describe(box)} by ${out}px)`});
    }
  }
  return findings;
}
"""

LCP = """
() => new Promise((resolve) => {
  let lcp = null;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) lcp = entry.startTime;
  }).observe({type: 'largest-contentful-paint', buffered: true});
  requestAnimationFrame(() => setTimeout(() => resolve(lcp), 50));
})
"""

RESOURCES = "() => performance.getEntriesByType('resource').map((entry) => entry.name)"

AXE_RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                  targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')), count: v.nodes.length}));
}
"""


# ---------------------------------------------------------------------------------------------------------------
# The sweep


@dataclass
class Sweep:
    pages: list
    visits: list  # (page, lang, width, status, final route)
    layout: list  # (page, lang, width, kind, selector, text)
    axe: list  # (page, lang, width, rule, impact, targets)
    weight: list  # (page, width, KB, LCP ms)
    axe_ran: bool
    seconds: float
    phases: dict  # seconds spent per step, summed over the pages
    slowest: list  # (seconds, page, lang, width) of the slowest visits


def _gzip_size(url: str, cache: dict) -> int:
    if url not in cache:
        with urllib.request.urlopen(url) as response:  # noqa: S310 - the live server
            cache[url] = len(gzip.compress(response.read(), compresslevel=6))
    return cache[url]


def _weigh(page, cache: dict) -> tuple[float, float | None]:
    lcp = page.evaluate(LCP)
    total = 0
    for url in set(page.evaluate(RESOURCES)):
        suffix = Path(url.split("?")[0]).suffix.lower()
        if suffix in ASSET_TYPES:
            total += _gzip_size(url, cache)
    return round(total / 1024, 1), (round(lcp) if lcp is not None else None)


def _screenshot(tab, path: Path, width: int) -> None:
    """The whole page, in a window as tall as the page: a full-page screenshot would draw the dashboard's tab bar
    (fixed to the bottom of the window) in the middle of the page."""
    height = tab.evaluate("document.documentElement.scrollHeight")
    tab.set_viewport_size({"width": width, "height": max(HEIGHT, min(height, 16_000))})
    tab.screenshot(path=str(path))
    tab.set_viewport_size({"width": width, "height": HEIGHT})


def _run(browser, base_url: str, data: dict) -> Sweep:
    pages = catalogue(data)
    axe_source = AXE.read_text(encoding="utf-8") if AXE.exists() else None
    visits, layout, axe, weight, sizes = [], [], [], [], {}
    phases = dict.fromkeys(("load", "weigh", "screenshot", "layout", "axe"), 0.0)
    durations = []
    started = time.monotonic()

    def lap(phase: str, since: float) -> float:
        now = time.monotonic()
        phases[phase] += now - since
        return now

    for language in LANGUAGES:
        for width in WIDTHS:
            folder = SCREENS / language / str(width)
            folder.mkdir(parents=True, exist_ok=True)
            for role in ("buyer", "anonymous", "member", "staff", "clerk"):
                context = browser.new_context(viewport={"width": width, "height": HEIGHT}, device_scale_factor=1)
                cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url}]
                if data["sessions"][role]:
                    cookies.append(
                        {"name": settings.SESSION_COOKIE_NAME, "value": data["sessions"][role], "url": base_url}
                    )
                context.add_cookies(cookies)
                tab = context.new_page()
                tab.set_default_timeout(15_000)
                for page in (p for p in pages if p.role == role and (not ONLY or p.name in ONLY)):
                    clock = visit_started = time.monotonic()
                    response = tab.goto(base_url + page.path, wait_until="load")
                    if page.forged:
                        context.clear_cookies(name=settings.CSRF_COOKIE_NAME)
                        with tab.expect_navigation(wait_until="load") as navigation:
                            tab.evaluate("document.querySelector('#content form[method=post]').submit()")
                        response = navigation.value
                    clock = lap("load", clock)
                    final_route = route_of(tab.url.removeprefix(base_url))
                    visits.append((page, language, width, response.status if response else None, final_route))
                    if language == "en" and (width == 375 or page.weigh_wide):
                        kb, lcp = _weigh(tab, sizes)
                        weight.append((page.name, width, kb, lcp))
                        clock = lap("weigh", clock)
                    _screenshot(tab, folder / f"{page.name}.png", width)
                    clock = lap("screenshot", clock)
                    for finding in tab.evaluate(LAYOUT_CHECKS):
                        layout.append(
                            (page.name, language, width, finding["kind"], finding["selector"], finding["text"])
                        )
                    clock = lap("layout", clock)
                    if axe_source is not None and width in AXE_WIDTHS:
                        # Evaluated through the DevTools protocol: page.add_script_tag would add an inline script,
                        # which the site's CSP refuses (script-src 'self'), and no context needs bypass_csp.
                        if not tab.evaluate("() => typeof axe !== 'undefined'"):
                            tab.evaluate(axe_source + "\n;0")
                        for violation in tab.evaluate(AXE_RUN):
                            axe.append(
                                (page.name, language, width, violation["id"], violation["impact"], violation["targets"])
                            )
                        lap("axe", clock)
                    durations.append((round(time.monotonic() - visit_started, 2), page.name, language, width))
                context.close()
    seconds = time.monotonic() - started
    slowest = sorted(durations, reverse=True)[:5]
    return Sweep(pages, visits, layout, axe, weight, axe_source is not None, seconds, phases, slowest)


@pytest.fixture(scope="module")
def sweep(django_db_setup, django_db_blocker, live_server, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements.txt)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install chromium")
    overrides = override_settings(
        MEDIA_ROOT=tmp_path_factory.mktemp("media"),
        SITE_URL=live_server.url,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        REFERRALS_TREE_INDEX_INLINE=True,
        CLICKS_REDIS_URL="",
    )
    eager = celery_app.conf.task_always_eager
    with pytest.MonkeyPatch.context() as patch, overrides, django_db_blocker.unblock():
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        patch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)  # the live server's threads: see conftest
        celery_app.conf.task_always_eager = True
        try:
            started = time.monotonic()
            data = build_data()
            built = time.monotonic() - started
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    result = _run(browser, live_server.url, data)
                finally:
                    browser.close()
            spent = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in result.phases.items())
            print(
                f"\npage sweep: data built in {built:.1f} s, {len(result.visits)} visits"
                f" in {result.seconds:.1f} s ({spent}); slowest: {result.slowest}"
            )
            yield result
        finally:
            celery_app.conf.task_always_eager = eager
            call_command("flush", interactive=False, verbosity=0)
            connections.close_all()


# ---------------------------------------------------------------------------------------------------------------
# The tests


def _table(rows, header) -> str:
    return "\n".join(["  ".join(header), *("  ".join(str(cell) for cell in row) for row in rows)])


def uncovered(all_routes: list[str], covered: set[str]) -> list[str]:
    """The URL patterns with neither a page in the catalogue nor a reason in EXCLUDED."""
    return [
        route
        for route in all_routes
        if route not in covered
        and not any(re.fullmatch(pattern, route) for pattern in {**EXCLUDED, **ONLY_IN_DEVELOPMENT})
    ]


def test_a_page_with_no_entry_is_named():
    all_routes = ["dashboard/", "dashboard/reports/", "api/v1/me/", "dashboard/payouts/statement.csv", "logout/"]

    assert uncovered(all_routes, covered={"dashboard/"}) == ["dashboard/reports/"]


def test_every_page_is_in_the_catalogue(sweep):
    missing = uncovered(routes(), covered={page.route for page in sweep.pages})
    assert missing == [], "pages with no entry in the sweep's catalogue (or a reason in EXCLUDED):\n" + "\n".join(
        missing
    )
    unused = [pattern for pattern in EXCLUDED if not any(re.fullmatch(pattern, route) for route in routes())]
    unused = [pattern for pattern in unused if pattern not in ONLY_IN_DEVELOPMENT]
    assert unused == [], f"exclusions that match no URL pattern any more: {unused}"


def test_every_page_answers_as_expected(sweep):
    wrong = [
        f"{page.name} {language} {width}: {status} at {final_route} (expected {page.status} at {page.route})"
        for page, language, width, status, final_route in sweep.visits
        if status != page.status or final_route != page.route
    ]
    assert wrong == []
    visited = [page for page in sweep.pages if not ONLY or page.name in ONLY]
    assert len(sweep.visits) == len(visited) * len(LANGUAGES) * len(WIDTHS)


def test_no_horizontal_scroll_broken_number_or_overflowing_text(sweep):
    rows = sorted(set(sweep.layout))
    assert rows == [], f"{len(rows)} layout findings:\n" + _table(
        rows, ("page", "lang", "width", "kind", "where", "what")
    )


def test_axe_finds_no_serious_or_critical_violation(sweep):
    if not sweep.axe_ran:
        pytest.skip(f"needs axe-core: npm ci (no {AXE.relative_to(ROOT)})")
    rows = [
        (page, lang, width, rule, impact, ", ".join(targets)) for page, lang, width, rule, impact, targets in sweep.axe
    ]
    assert rows == [], f"{len(rows)} axe violations:\n" + _table(
        rows, ("page", "lang", "width", "rule", "impact", "targets")
    )


def test_page_weight_and_largest_contentful_paint(sweep):
    ARTIFACTS.mkdir(exist_ok=True)
    rows = [(name, width, kb, lcp if lcp is not None else "-") for name, width, kb, lcp in sweep.weight]
    table = _table(rows, ("page", "width", "KB (CSS+JS+fonts, gzip)", "LCP ms"))
    (ARTIFACTS / "page-weight.txt").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)
    heavy = [row for row in sweep.weight if row[2] > WEIGHT_LIMIT_KB]
    slow = [row for row in sweep.weight if row[3] is None or row[3] > LCP_LIMIT_MS]
    assert heavy == [], f"over {WEIGHT_LIMIT_KB} KB: {heavy}"
    assert slow == [], f"no Largest Contentful Paint or over {LCP_LIMIT_MS} ms: {slow}"


# A page with one of each defect, and with what must not count as one: the checks above can fail.
PLANTED = """<!doctype html><html><body style="margin:0">
<div id="too-wide" style="width:600px">a block wider than a phone</div>
<p style="width:40px;overflow-wrap:anywhere"><span class="money" id="wrapped">¥1,234,567.89</span></p>
<p id="sentence" style="width:60px;overflow-wrap:anywhere">Total ¥98,765.43 today</p>
<div id="overflowing" style="width:80px;white-space:nowrap">a sentence that does not fit its box</div>
<div style="width:80px"><a id="long-link" style="white-space:nowrap">https://example.com/a/very/long/address</a></div>
<div style="width:100px"><p id="badge" style="display:inline-block;white-space:nowrap">a wide badge, cut</p></div>
<p style="position:relative;width:40px">Bell<b style="position:absolute;left:30px">13</b></p>
<div class="table-wrap" style="overflow-x:auto;width:100px"><p style="width:300px">scrolls on purpose</p></div>
<p><span class="money" id="fits">¥12.00</span> and ¥3.50 on one line</p>
<div style="display:flex;width:120px"><span style="flex:1">编号 1，申请于 2026年12月8日</span>
<button id="squeezed" style="min-width:0;width:24px">取消</button></div>
<div style="display:flex;width:200px"><span style="flex:1">编号 1</span><button id="roomy">取消</button></div>
<span class="visually-hidden" style="position:absolute;width:1px;overflow:hidden">hidden ¥1,000,000.00</span>
<table style="display:block;width:100px"><thead style="position:absolute;width:1px;height:1px;overflow:hidden;
clip-path:inset(50%)"><tr><th>Commission</th><th>Amount of the order</th></tr></thead></table>
</body></html>"""


def test_the_layout_checks_find_what_they_look_for(chromium):
    context = chromium.new_context(viewport={"width": 375, "height": HEIGHT}, device_scale_factor=1)
    page = context.new_page()
    page.set_content(PLANTED)
    found = sorted((finding["kind"], finding["selector"]) for finding in page.evaluate(LAYOUT_CHECKS))
    context.close()

    assert found == [
        ("horizontal scroll", "div#too-wide"),
        ("label broken", "button#squeezed"),
        ("number broken", "p#sentence"),
        ("number broken", "span#wrapped.money"),
        ("text overflows", "a#long-link"),
        ("text overflows", "div#overflowing"),
        ("text overflows", "div#too-wide"),
        ("text overflows", "p#badge"),
    ]
