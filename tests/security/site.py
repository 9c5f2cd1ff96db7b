"""A small site for the security tests: a superuser who is also a member with a shop, a link, an order; and the
pages worth visiting (storefront, dashboard, admin, back office, API docs), by URL."""

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse

from referrals.services import member_join
from shops.models import Order, Shop
from shops.services import share_link_create
from tests.factories import PASSWORD, ProductFactory, pay_order, place_order, shop_with_products


@dataclass
class Site:
    email: str
    shop: Shop
    order: Order
    buyer_pages: list[str]
    member_pages: list[str]
    staff_pages: list[str]


def admin_pages(user) -> list[str]:
    """Every registered model's list, and its add page where admin lets a superuser add."""
    request = RequestFactory().get("/")
    request.user = user
    pages = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        if model_admin.has_add_permission(request):
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    return pages


def make_site() -> Site:
    user = get_user_model().objects.create_superuser(email="boss@example.com", password=PASSWORD, first_name="Boss")
    member = member_join(user=user, sponsor=None)
    product = ProductFactory(title="Green tea")
    shop = shop_with_products(product, owner=member, name="Boss tea", slug="boss-tea")
    share_link_create(owner=member, product=product)
    order = pay_order(place_order(shop))
    buyer_pages = [
        "/",
        reverse("shops:shop_home", args=[shop.slug]),
        reverse("shops:product_detail", args=[shop.slug, product.pk]),
        reverse("shops:cart", args=[shop.slug]),
        reverse("shops:order_lookup"),
        reverse("login"),
        reverse("password_reset"),
        reverse("members:join"),
    ]
    member_pages = [
        reverse("members:dashboard"),
        reverse("members:team"),
        reverse("members:links"),
        reverse("members:my_shop"),
        reverse("members:my_shop_products"),
        reverse("members:my_shop_catalogue"),
        reverse("members:my_shop_networks"),
        reverse("members:commission_entries"),
        reverse("members:payouts"),
        reverse("members:payout_account"),
        reverse("members:payout_statement"),
        reverse("members:identity"),
        reverse("accounts:profile"),
        reverse("accounts:tokens"),
        reverse("password_change"),
    ]
    staff_pages = [
        reverse("admin:index"),
        *admin_pages(user),
        reverse("admin:shops_order_change", args=[order.pk]),
        reverse("admin:shops_product_change", args=[product.pk]),
        reverse("admin:shops_shop_change", args=[shop.pk]),
        reverse("admin:referrals_member_change", args=[member.pk]),
        reverse("admin:accounts_user_change", args=[user.pk]),
        reverse("staff:overview"),
        reverse("staff:audit_log"),
        reverse("staff:compliance_report"),
        reverse("staff:simulation_list"),
        reverse("staff:simulation_create"),
        reverse("api-docs"),
    ]
    return Site(user.email, shop, order, buyer_pages, member_pages, staff_pages)
