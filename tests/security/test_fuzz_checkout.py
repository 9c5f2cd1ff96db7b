"""Fuzzing the checkout: the form on its own, and the checkout POST through the test client.

Property: any field values give either a valid form whose values fit the Order columns, or form errors; through
the client, a 302 to the payment (an order placed) or a 400 with the form's errors, and on a 400 nothing is
written: no order, no stock taken, the cart kept.
"""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shops.forms import CheckoutForm
from shops.models import Order, OrderEvent, Product
from tests.factories import ProductFactory, shop_with_products

FUZZ = settings(max_examples=1000, deadline=None)
FUZZ_CLIENT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FIELDS = ("name", "phone", "email", "address")
# What a browser can POST: any character a form field can carry (NUL and controls included), at lengths around
# each column's limit, plus the shapes the validators care about.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
long_text = st.integers(0, 600).map(lambda n: "x" * n)
phones = st.from_regex(r"\A\+?[0-9][0-9 -]{0,22}[0-9]?\Z") | st.sampled_from(
    ["", " ", "13800138000", "+8613800138000\n"]
)
emails = (
    st.emails().map(str)
    | st.integers(240, 330).map(lambda n: "a" * (n - 12) + "@example.com")  # around the 254-character column
    | st.sampled_from(["", "a@b", "a@b.c", "@", "a@-b.com", "a@xn--ls8h.la", "a@例え.jp", "a\x00@b.com"])
)
values = {
    "name": any_text | long_text | st.just(" \u3000 "),
    "phone": phones | any_text,
    "email": emails | any_text,
    "address": any_text | long_text | st.just("1 Nanjing Road, Shanghai"),
}
posts = st.fixed_dictionaries({}, optional=values) | st.dictionaries(
    st.sampled_from(FIELDS) | any_text, any_text | long_text, max_size=6
)

ORDER_COLUMNS = {"name": "buyer_name", "phone": "buyer_phone", "email": "buyer_email", "address": "shipping_address"}
LONG_EMAIL = "a" * 243 + "@example.com"  # 255 characters: a valid address, one too long for the column


def assert_fits_the_order(cleaned: dict) -> None:
    for field, column in ORDER_COLUMNS.items():
        model_field = Order._meta.get_field(column)
        value = cleaned[field]
        assert isinstance(value, str) and "\x00" not in value
        assert len(value) <= model_field.max_length, (column, len(value))
        model_field.run_validators(value) if value else None


@FUZZ
@given(data=posts)
@example(data={"name": "Wang Fang", "email": LONG_EMAIL, "address": "1 Nanjing Road, Shanghai"})
@example(data={"name": "Wang\x00", "phone": "13800138000", "address": "1 Nanjing Road, Shanghai"})
@example(data={"name": "Wang Fang", "phone": "138\n00138000", "address": "1 Nanjing Road, Shanghai"})
def test_checkout_form_gives_values_that_fit_an_order_or_errors(data):
    form = CheckoutForm(data)
    if form.is_valid():
        assert_fits_the_order(form.cleaned_data)
        assert form.cleaned_data["phone"] or form.cleaned_data["email"]
    else:
        assert form.errors


# --- Through the test client --------------------------------------------------------------------------------


@pytest.fixture
def shop(db, settings):
    settings.RATE_LIMIT_CHECKOUT = ""  # every example checks out from the same address
    return shop_with_products(ProductFactory(price=Decimal("19.90"), stock=10_000))


def fill_cart(client, shop) -> Product:
    product = shop.listings.get().product
    # Exactly one in the cart, whatever an earlier example (same client) left there.
    response = client.post(f"/s/{shop.slug}/cart/", {"product": product.pk, "quantity": 1})
    assert response.status_code == 302
    return product


@FUZZ_CLIENT
@given(data=posts)
@example(data={"name": "Wang Fang", "email": LONG_EMAIL, "address": "1 Nanjing Road, Shanghai"})
@example(data={"name": "Wang Fang", "phone": "13800138000", "address": "1 Nanjing Road, Shanghai"})
def test_checkout_post_places_an_order_or_answers_400_and_writes_nothing(client, shop, data):
    product = fill_cart(client, shop)
    stock = Product.objects.get(pk=product.pk).stock
    orders, events = Order.objects.count(), OrderEvent.objects.count()

    response = client.post(f"/s/{shop.slug}/checkout/", data)

    # An empty POST is read as no form at all (`request.POST or None`): the blank form again, 200.
    assert response.status_code in ((200, 302, 400) if not data else (302, 400))
    if response.status_code in (200, 400):
        assert response.context["form"].errors or not data
        assert (Order.objects.count(), OrderEvent.objects.count()) == (orders, events)
        assert Product.objects.get(pk=product.pk).stock == stock
        assert client.session.get("cart")  # kept, so the buyer can fix the form
    else:
        order = Order.objects.latest("pk")
        assert Order.objects.count() == orders + 1
        assert Product.objects.get(pk=product.pk).stock == stock - 1
        assert_fits_the_order(
            {"name": order.buyer_name, "phone": order.buyer_phone, "email": order.buyer_email,
             "address": order.shipping_address}
        )  # fmt: skip


@FUZZ_CLIENT
@given(data=posts)
def test_checkout_with_an_empty_cart_writes_nothing(client, shop, data):
    orders = Order.objects.count()

    response = client.post(f"/s/{shop.slug}/checkout/", data)

    assert response.status_code == 302  # back to the shop: "Your cart is empty."
    assert Order.objects.count() == orders
