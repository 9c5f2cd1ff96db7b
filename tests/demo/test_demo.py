import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from referrals.models import Member
from referrals.selectors import tree_check
from shops.models import Order, OrderEvent, Product, Shop, ShopListing

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # the demo's product images must never land in the repository


def _storefront_counts() -> dict[str, int]:
    return {
        "products": Product.objects.count(),
        "shops": Shop.objects.count(),
        "listings": ShopListing.objects.count(),
        "orders": Order.objects.count(),
        "events": OrderEvent.objects.count(),
    }


def test_demo_builds_a_deep_tree_and_is_idempotent():
    first, second = StringIO(), StringIO()

    call_command("demo", stdout=first)
    counts = (get_user_model().objects.count(), Member.objects.count())
    call_command("demo", stdout=second)

    assert counts == (get_user_model().objects.count(), Member.objects.count())
    assert counts == (35, 31)  # 31 members, the superuser and one staff login per group
    assert Member.objects.filter(level=3).count() == 18
    assert tree_check().is_valid
    assert "admin@example.com" in first.getvalue()
    assert "(0 new members)" in second.getvalue()


def test_demo_builds_a_storefront_with_orders_in_every_state(tmp_path):
    call_command("demo", stdout=StringIO())

    products = list(Product.objects.all())
    assert len(products) >= 12
    assert all(product.image and (tmp_path / product.image.name).is_file() for product in products)
    assert all(product.image.name.startswith("products/") for product in products)
    assert all(Decimal("0.05") <= product.commission_rate <= Decimal("0.30") for product in products)
    demo = Shop.objects.get(slug="demo")
    assert demo.owner.user.email == "founder@example.com"
    assert 4 <= demo.listings.count() <= 8
    assert all(listing.product.stock > 0 and listing.product.is_active for listing in demo.listings.all())
    assert Shop.objects.count() >= 4
    for shop in Shop.objects.all():
        assert 4 <= shop.listings.count() <= 8
        assert 1 <= shop.listings.filter(is_featured=True).count() <= 2
    for status in Order.Status.values:
        assert Order.objects.filter(status=status).exists(), status
    assert Order.objects.filter(status=Order.Status.PAID, refunded_total__gt=0).exists()


def test_running_the_demo_twice_adds_nothing_to_the_storefront(tmp_path):
    call_command("demo", stdout=StringIO())
    counts = _storefront_counts()
    images = sorted(str(path) for path in tmp_path.rglob("*"))  # the pictures and their thumbnails

    output = StringIO()
    call_command("demo", stdout=output)

    assert _storefront_counts() == counts
    assert sorted(str(path) for path in tmp_path.rglob("*")) == images
    assert "0 new orders" in output.getvalue()


def _dated_after(moment) -> list[str]:
    """Every row of every model with a date or time after `moment`, as "model.field = value"."""
    from django.apps import apps
    from django.db import models

    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.DateTimeField):
                limit = moment
            elif isinstance(field, models.DateField):
                limit = timezone.localdate(moment)  # dates are local days (TIME_ZONE), as the app records them
            else:
                continue
            for value in model._default_manager.filter(**{f"{field.name}__gt": limit}).values_list(
                field.name, flat=True
            ):
                found.append(f"{model._meta.label}.{field.name} = {value.isoformat()}")
    return found


def test_the_demo_dates_nothing_in_the_future():
    """Ledger entries, releases, withdrawals, orders and statement lines are all in the past (issue #19: the demo
    released commission "as if the hold had passed" with a clock a week ahead, so the statement showed credits
    dated after today and a negative running balance)."""
    from payouts.selectors import member_balance, member_statement

    call_command("demo", stdout=StringIO())
    now = timezone.now()

    assert _dated_after(now) == []
    founder = Member.objects.get(user__email="founder@example.com")
    lines = member_statement(founder)
    assert lines and all(line.at <= now for line in lines)
    assert all(line.balance >= 0 for line in lines)  # the founder's commission was never clawed back
    assert lines[-1].balance == member_balance(founder).withdrawable


def test_the_demo_refuses_to_run_where_debug_is_off(settings):
    settings.IS_PRODUCTION = True
    users_before = get_user_model().objects.count()

    with pytest.raises(CommandError, match="refuses to run with DEBUG=0"):
        call_command("demo", stdout=StringIO())

    assert get_user_model().objects.count() == users_before == 0
    assert not Member.objects.exists() and not Shop.objects.exists() and not Order.objects.exists()


def test_manage_py_demo_refuses_with_debug_0_in_the_environment(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DEBUG", "SECRET_KEY")}
    database = tmp_path / "db.sqlite3"
    env.update(
        DEBUG="0",
        SECRET_KEY="a-production-secret-" + "x" * 40,
        DATABASE_URL=f"sqlite:///{database}",
        SITE_URL="https://shop.example.com",  # otherwise the start-up checks refuse before the demo is asked
        ALLOWED_HOSTS="shop.example.com",
    )

    command = [sys.executable, "manage.py", "demo"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 1
    assert "The demo refuses to run with DEBUG=0" in result.stderr
    assert not database.exists()  # it stopped before touching the database


def test_the_demo_command_is_the_demo_apps_with_its_options():
    """`make run` calls `manage.py demo --wait-for-sandbox 15`: the command moved from referrals to the demo app
    (at the top of the stack, the only place allowed to fill every app) with its name and options."""
    from django.core.management import get_commands, load_command_class

    command = load_command_class(get_commands()["demo"], "demo")

    assert get_commands()["demo"] == "demo"
    assert command.create_parser("manage.py", "demo").parse_args(["--wait-for-sandbox", "15"]).wait_for_sandbox == 15.0
