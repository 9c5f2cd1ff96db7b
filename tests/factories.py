import functools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.test import TestCase
from django.utils import timezone

from accounts.approvals import approval_decide
from accounts.models import ApprovalRequest, Identity
from core.encryption import blind_index, encrypt
from core.id_numbers import gb11643_check_char
from referrals.models import Member
from referrals.services import member_join
from shops.models import Category, Order, Product, Shop
from shops.payments.sandbox import build_webhook
from shops.services import (
    BuyerDetails,
    order_place,
    payment_notices_apply,
    payment_start,
    payment_webhook_receive,
    shop_listing_add,
    shop_open,
)

PASSWORD = "correct-horse-battery-staple"
REAL_NAME = "王芳"


def resident_id(serial: int, *, birth: str = "19900101", region: str = "110105") -> str:
    """A valid resident ID number (GB 11643 check digit) for a test person, distinct per `serial` (0–999)."""
    first17 = f"{region}{birth}{serial % 1000:03d}"
    return first17 + gb11643_check_char(first17)


def verified_identity(user, *, name: str = REAL_NAME, number: str = "") -> Identity:
    """A verified resident-ID identity written directly (the capture and verification are tested on their own)."""
    number = number or resident_id(user.pk, birth=f"19{50 + user.pk // 1000 % 50}0101")
    return Identity.objects.create(
        user=user,
        id_type=Identity.IdType.RESIDENT_ID,
        legal_name_encrypted=encrypt(name),
        id_number_encrypted=encrypt(number),
        id_number_index=blind_index(f"resident_id:{number}"),
        status=Identity.Status.VERIFIED,
        verified_at=timezone.now(),
    )


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    password = factory.django.Password(PASSWORD)


class MemberFactory(factory.Factory):
    """Members are made through the join service, as in production: the tree stays valid."""

    class Meta:
        model = Member

    user = factory.SubFactory(UserFactory)
    sponsor = None
    # A verified identity (issue #24: no withdrawal without one), legal name 王芳 as the payout tests' accounts have;
    # `identity=False` for a member who has none, a name for another legal name.
    identity = REAL_NAME

    @classmethod
    def _create(cls, model_class, user, sponsor=None, identity=REAL_NAME, **kwargs):
        member = member_join(user=user, sponsor=sponsor)
        if identity and not Identity.objects.filter(user=user).exists():
            verified_identity(user, name=identity)
        return member

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise NotImplementedError("Members only exist in the tree; use create().")


def make_chain(length: int) -> list[Member]:
    """A root and `length - 1` members, each under the previous one."""
    chain = [MemberFactory()]
    for _ in range(length - 1):
        chain.append(MemberFactory(sponsor=chain[-1]))
    return chain


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("name",)

    name = factory.Iterator(["Tea", "Snacks", "Home", "Beauty"])


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    title = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine product."
    category = factory.SubFactory(CategoryFactory)
    price = Decimal("19.90")
    stock = 100
    is_active = True
    commission_rate = Decimal("0.1000")


class ShopFactory(factory.Factory):
    """A shop opened through the service, owned by a new member unless one is given."""

    class Meta:
        model = Shop

    owner = factory.SubFactory(MemberFactory)
    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")

    @classmethod
    def _create(cls, model_class, owner, name, slug, **kwargs):
        return shop_open(owner=owner, name=name, slug=slug, **kwargs)


def shop_with_products(*products: Product, **shop_kwargs) -> Shop:
    """A shop listing the given products (or two new ones)."""
    shop = ShopFactory(**shop_kwargs)
    for product in products or (ProductFactory(), ProductFactory()):
        shop_listing_add(shop=shop, product=product)
    return shop


BUYER = BuyerDetails(name="Wang Fang", phone="13900001111", email="", address="1 Nanjing Road, Shanghai")


def place_order(shop: Shop, items: dict | None = None) -> Order:
    """An unpaid order for `items` ({product: quantity}; default one of each listed product)."""
    if items is None:
        items = {listing.product: 1 for listing in shop.listings.select_related("product")}
    return order_place(shop=shop, items={product.pk: qty for product, qty in items.items()}, buyer=BUYER)


def pay_order(order: Order) -> Order:
    """Pay an order through the sandbox provider's signed webhook, as production does."""
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    body, headers = build_webhook(payment, "succeeded")
    result = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
    if (
        result.outcome == "received"
    ):  # recorded for a worker's run (tests with a broker): applied now, as that run would
        payment_notices_apply()
    order.refresh_from_db()
    return order


def after_commit(service):
    """`service` as production runs it, for tests: what its transactions leave for after their commit (telling the
    ledger's keeper that external lines are marked, which then writes the ledger in-process) runs when it returns.
    A test's own transaction never commits, so without this it would never run."""

    @functools.wraps(service)
    def call(*args, **kwargs):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return service(*args, **kwargs)

    return call


def inline_management_data(response) -> dict:
    """The management forms of the inlines on an admin change page (`response`, its GET), as a POST must send them:
    a change that leaves the inlines alone."""
    data = {}
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
    return data


def default_commissions() -> None:
    """The default compliance policy and plan a fresh install starts with (commissions' migration 0002), for tests with
    real commits (`transaction=True`), whose flush empties the tables between tests."""
    import importlib

    from django.apps import apps

    importlib.import_module("commissions.migrations.0002_default_policy_and_plan").create_defaults(apps, None)


def second_approves(action: str | None = None, *, approver=None) -> list[ApprovalRequest]:
    """Four eyes in tests: another staff member (a new superuser unless given) approves every open approval request
    (of `action`, if given), oldest first; returns them decided."""
    approver = approver or UserFactory(is_staff=True, is_superuser=True)
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).order_by("pk")
    if action:
        pending = pending.filter(action=action)
    return [approval_decide(request=request, approver=approver, approve=True) for request in pending]
