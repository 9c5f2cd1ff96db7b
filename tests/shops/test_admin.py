import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from shops.models import Order, OrderEvent, Product, Refund, WebhookEvent
from shops.services import order_cancel, order_mark_shipped, order_refund
from tests.factories import ProductFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:shops_order_changelist")
PRODUCTS = reverse("admin:shops_product_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def shop():
    return shop_with_products(ProductFactory(price=Decimal("10.00")), ProductFactory(price=Decimal("25.50")))


def _act(admin_client, action: str, *orders: Order, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [order.pk for order in orders], "index": "0", **extra}
    return admin_client.post(ORDERS, data, follow=True)


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def _snapshot(order: Order) -> tuple:
    order.refresh_from_db()
    return order.status, order.refunded_total, order.events.count(), Refund.objects.filter(order=order).count()


# --- Changelists --------------------------------------------------------------


def test_order_changelist_lists_orders_in_bounded_queries(admin_client, shop, django_assert_max_num_queries):
    for _ in range(15):
        pay_order(place_order(shop))
    place_order(shop)

    with django_assert_max_num_queries(7):
        response = admin_client.get(ORDERS)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 16
    page = response.content.decode()
    assert "¥35.50" in page  # one of each: 10.00 + 25.50


def test_product_changelist_lists_products_in_bounded_queries(admin_client, django_assert_max_num_queries):
    for _ in range(30):
        ProductFactory()

    with django_assert_max_num_queries(6):
        response = admin_client.get(PRODUCTS)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 30


def test_order_search_by_number_phone_and_name(admin_client, shop):
    order = place_order(shop)
    other = place_order(shop)
    Order.objects.filter(pk=other.pk).update(buyer_name="Someone Else", buyer_phone="13100000000")

    by_number = admin_client.get(ORDERS, {"q": order.number})
    by_phone = admin_client.get(ORDERS, {"q": "13100000000"})

    assert list(by_number.context["cl"].result_list) == [order]
    assert list(by_phone.context["cl"].result_list) == [other]


def test_shop_and_webhook_changelists_load(admin_client, shop):
    pay_order(place_order(shop))

    assert admin_client.get(reverse("admin:shops_shop_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:shops_shop_change", args=[shop.pk])).status_code == 200
    assert admin_client.get(reverse("admin:shops_webhookevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:shops_category_changelist")).status_code == 200


# --- Order change page is read-only ---------------------------------------------


def test_order_page_shows_lines_events_and_payments_read_only(admin_client, shop, django_assert_max_num_queries):
    order = pay_order(place_order(shop, {listing.product: 3 for listing in shop.listings.all()}))
    for line in order.lines.all():  # several refunds and events, so a query per row would show
        order_refund(order=order, quantities={line.pk: 1}, reason="damaged")
        order_refund(order=order, quantities={line.pk: 1}, reason="damaged again")
    order_mark_shipped(order=order)

    with django_assert_max_num_queries(10):
        response = admin_client.get(reverse("admin:shops_order_change", args=[order.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert order.number in page
    assert 'name="total"' not in page
    assert 'name="status"' not in page
    assert 'name="lines-0-quantity"' not in page
    assert "Placed" in page and "sandbox" in page
    assert "1 × " + order.lines.first().title in page  # what each refund covered
    assert 'name="_save"' not in page


def test_a_post_to_the_order_page_changes_nothing(admin_client, shop):
    order = pay_order(place_order(shop))
    before = _snapshot(order)

    response = admin_client.post(
        reverse("admin:shops_order_change", args=[order.pk]),
        {"status": "completed", "total": "1.00", "refunded_total": "0.00", "buyer_name": "Mallory"},
    )

    assert response.status_code == 403
    assert _snapshot(order) == before
    assert order.total == Decimal("35.50")
    assert order.buyer_name == "Wang Fang"


def test_orders_cannot_be_added_or_deleted(admin_client, shop):
    order = place_order(shop)

    assert admin_client.get(reverse("admin:shops_order_add")).status_code == 403
    assert admin_client.post(reverse("admin:shops_order_delete", args=[order.pk]), {"post": "yes"}).status_code == 403
    delete_action = admin_client.post(ORDERS, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [order.pk]})
    assert Order.objects.filter(pk=order.pk).exists()
    assert delete_action.status_code in (200, 302)


def test_webhook_events_are_read_only(admin_client, shop):
    pay_order(place_order(shop))
    event = WebhookEvent.objects.get()
    url = reverse("admin:shops_webhookevent_change", args=[event.pk])

    page = admin_client.get(url)
    post = admin_client.post(url, {"outcome": "forged", "event_type": "payment.failed"})
    delete = admin_client.post(reverse("admin:shops_webhookevent_delete", args=[event.pk]), {"post": "yes"})

    assert page.status_code == 200
    assert 'name="outcome"' not in page.content.decode()
    assert post.status_code == 403
    assert delete.status_code == 403
    assert admin_client.get(reverse("admin:shops_webhookevent_add")).status_code == 403
    event.refresh_from_db()
    assert event.outcome == "order paid"


# --- Status actions -------------------------------------------------------------


def test_ship_then_complete_actions_call_the_services(admin_client, shop, staff_user):
    first, second = pay_order(place_order(shop)), pay_order(place_order(shop))

    shipped = _act(admin_client, "mark_shipped", first, second)
    completed = _act(admin_client, "mark_completed", first)

    assert ("success", "Marked 2 orders shipped.") in _messages(shipped)
    assert ("success", "Marked 1 order completed.") in _messages(completed)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Order.Status.COMPLETED, Order.Status.SHIPPED)
    assert first.shipped_at is not None and first.completed_at is not None
    event = first.events.get(to_status=Order.Status.SHIPPED)
    assert (event.actor, event.actor_label, event.from_status) == (staff_user, "staff", Order.Status.PAID)


def test_shipping_an_unpaid_or_cancelled_order_is_refused_per_order(admin_client, shop):
    unpaid = place_order(shop)
    cancelled = order_cancel(order=place_order(shop), actor_label="buyer")
    paid = pay_order(place_order(shop))
    before = (_snapshot(unpaid), _snapshot(cancelled))

    response = _act(admin_client, "mark_shipped", unpaid, cancelled, paid)

    assert response.status_code == 200
    messages = _messages(response)
    assert ("error", f"{unpaid.number}: An order that is “Awaiting payment” cannot become “Shipped”.") in messages
    assert ("error", f"{cancelled.number}: An order that is “Cancelled” cannot become “Shipped”.") in messages
    assert ("success", "Marked 1 order shipped.") in messages
    assert (_snapshot(unpaid), _snapshot(cancelled)) == before
    paid.refresh_from_db()
    assert paid.status == Order.Status.SHIPPED


def test_completing_a_paid_but_unshipped_order_is_refused(admin_client, shop):
    paid = pay_order(place_order(shop))
    before = _snapshot(paid)

    response = _act(admin_client, "mark_completed", paid)

    assert [level for level, _text in _messages(response)] == ["error"]
    assert _snapshot(paid) == before


def test_cancel_action_cancels_unpaid_orders_and_returns_stock(admin_client, shop, staff_user):
    product = shop.listings.order_by("pk").first().product
    unpaid = place_order(shop, {product: 3})
    paid = pay_order(place_order(shop, {product: 1}))
    paid_before = _snapshot(paid)

    response = _act(admin_client, "cancel_orders", unpaid, paid)

    messages = _messages(response)
    assert ("success", "Cancelled 1 order.") in messages
    assert ("error", f"{paid.number}: An order that is “Paid” cannot become “Cancelled”.") in messages
    unpaid.refresh_from_db()
    assert unpaid.status == Order.Status.CANCELLED
    assert unpaid.events.get(to_status=Order.Status.CANCELLED).actor == staff_user
    assert _snapshot(paid) == paid_before
    product.refresh_from_db()
    assert product.stock == 100 - 1


# --- Refunds --------------------------------------------------------------------


def test_refund_in_full_refunds_what_is_left(admin_client, shop, staff_user):
    order = pay_order(place_order(shop))
    stock_before = {line.product_id: line.product.stock for line in order.lines.select_related("product")}

    response = _act(admin_client, "refund_in_full", order)

    assert ("success", "Refunded 1 order in full.") in _messages(response)
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert order.refunded_total == Decimal("35.50")
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.actor) == (Decimal("35.50"), staff_user)
    for product in Product.objects.filter(pk__in=stock_before):
        assert product.stock == stock_before[product.pk] + 1  # not shipped: the goods go back on the shelf


def test_refund_in_full_of_an_unpaid_order_is_refused(admin_client, shop):
    order = place_order(shop)
    before = _snapshot(order)

    response = _act(admin_client, "refund_in_full", order)

    messages = _messages(response)
    assert len(messages) == 1
    assert messages[0][0] == "error"
    assert "Only paid orders can be refunded" in messages[0][1]
    assert _snapshot(order) == before


def _refund_lines(admin_client, order: Order, **fields):
    data = {"action": "refund_lines", ACTION_CHECKBOX_NAME: [order.pk], **fields}
    return admin_client.post(ORDERS, data, follow=True)


def test_refund_lines_shows_a_form_with_a_quantity_per_line(admin_client, shop):
    order = pay_order(place_order(shop, {product.product: 2 for product in shop.listings.all()}))
    lines = list(order.lines.order_by("pk"))

    response = _refund_lines(admin_client, order, index="0")

    assert response.status_code == 200
    assert response.templates[0].name == "admin/shops/order/refund_lines.html"
    page = response.content.decode()
    for line in lines:
        assert f'name="line_{line.pk}"' in page
        assert f'max="{line.refundable_quantity}"' in page
    assert 'name="reason"' in page
    assert 'value="refund_lines"' in page
    assert _snapshot(order)[3] == 0


def test_refund_one_line_partially(admin_client, shop, staff_user):
    order = pay_order(place_order(shop, {listing.product: 2 for listing in shop.listings.all()}))
    cheap, dear = order.lines.order_by("unit_price")

    response = _refund_lines(
        admin_client, order, apply="1", reason="one arrived broken", **{f"line_{dear.pk}": "1", f"line_{cheap.pk}": "0"}
    )

    assert ("success", "Refunded ¥25.50 on 1 order.") in _messages(response)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.refunded_total == Decimal("25.50")
    dear.refresh_from_db()
    cheap.refresh_from_db()
    assert (dear.refunded_quantity, dear.refunded_amount) == (1, Decimal("25.50"))
    assert (cheap.refunded_quantity, cheap.refunded_amount) == (0, Decimal("0.00"))
    refund = Refund.objects.get(order=order)
    assert (refund.reason, refund.actor) == ("one arrived broken", staff_user)
    assert [(line.order_line_id, line.quantity) for line in refund.lines.all()] == [(dear.pk, 1)]


def test_refund_more_than_was_bought_is_a_form_error_and_changes_nothing(admin_client, shop):
    order = pay_order(place_order(shop))
    line = order.lines.first()
    before = _snapshot(order)

    response = _refund_lines(admin_client, order, apply="1", reason="too many", **{f"line_{line.pk}": "2"})

    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 1." in response.content.decode()
    assert _snapshot(order) == before


@pytest.mark.parametrize("quantity", ["abc", "1.5", "-1", "9" * 30])
def test_refund_with_a_bad_quantity_is_a_form_error(admin_client, shop, quantity):
    order = pay_order(place_order(shop))
    line = order.lines.first()
    before = _snapshot(order)

    response = _refund_lines(admin_client, order, apply="1", reason="x", **{f"line_{line.pk}": quantity})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert _snapshot(order) == before


def test_refund_with_nothing_chosen_or_no_reason_redisplays_the_form(admin_client, shop):
    order = pay_order(place_order(shop))
    line = order.lines.first()
    before = _snapshot(order)

    nothing = _refund_lines(admin_client, order, apply="1", reason="x", **{f"line_{line.pk}": "0"})
    no_reason = _refund_lines(admin_client, order, apply="1", reason="", **{f"line_{line.pk}": "1"})

    assert "Enter a quantity to refund for at least one line." in nothing.content.decode()
    assert "reason" in no_reason.context["form"].errors
    assert _snapshot(order) == before


def test_refund_lines_after_the_order_was_refunded_meanwhile_is_refused(admin_client, shop):
    # The form was shown when 1 was left; before it is applied a full refund took it.
    order = pay_order(place_order(shop))
    line = order.lines.first()
    form_page = _refund_lines(admin_client, order, index="0")
    assert f'name="line_{line.pk}"' in form_page.content.decode()
    _act(admin_client, "refund_in_full", order)
    before = _snapshot(order)

    response = _refund_lines(admin_client, order, apply="1", reason="again", **{f"line_{line.pk}": "1"})

    assert [level for level, _text in _messages(response)] == ["error"]
    assert _snapshot(order) == before


def test_refund_lines_of_an_unpaid_order_says_so(admin_client, shop):
    order = place_order(shop)

    response = _refund_lines(admin_client, order, index="0")

    assert _messages(response) == [("error", "None of the chosen orders has anything left to refund.")]
    assert not Refund.objects.exists()


def test_refund_lines_of_a_shipped_order_keeps_the_stock_out(admin_client, shop):
    order = order_mark_shipped(order=pay_order(place_order(shop)))
    line = order.lines.select_related("product").first()
    stock = line.product.stock

    _refund_lines(admin_client, order, apply="1", reason="lost in post", **{f"line_{line.pk}": "1"})

    line.product.refresh_from_db()
    assert line.product.stock == stock
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.REFUND).count() == 1


# --- Products -------------------------------------------------------------------


# The product form's inline of sharing materials (issue #22), left empty.
NO_MATERIALS = {"materials-TOTAL_FORMS": "0", "materials-INITIAL_FORMS": "0"}


def product_form(product, **fields) -> dict:
    """The product change form as posted unchanged (stock as loaded), with `fields` changed."""
    data = {
        "title_en": product.title,
        "description_en": product.description,
        "category": product.category_id,
        "price": str(product.price),
        "stock": str(product.stock),
        "initial-stock": str(product.stock),
        "is_active": "on" if product.is_active else "",
        "commission_rate": str(product.commission_rate),
        **NO_MATERIALS,
    }
    data.update(fields)
    return data


def test_staff_attach_sharing_materials_to_a_product(admin_client):
    product = ProductFactory(stock=10)
    url = reverse("admin:shops_product_change", args=[product.pk])
    data = product_form(
        product,
        **{
            "materials-TOTAL_FORMS": "1",
            "materials-0-text_en": "Spring tea, picked by hand.",
            "materials-0-position": "1",
            "materials-0-is_active": "on",
        },
    )

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert list(product.materials.values_list("text", "is_active")) == [("Spring tea, picked by hand.", True)]

    # A material with neither a picture nor words is refused, and nothing is saved.
    data.update({"materials-0-text_en": "", "materials-0-position": "2"})
    refused = admin_client.post(url, data)

    assert refused.status_code == 200
    assert product.materials.count() == 1


def test_saving_a_product_without_touching_stock_keeps_checkouts_made_meanwhile(admin_client):
    product = ProductFactory(title="Longjing", stock=10)
    url = reverse("admin:shops_product_change", args=[product.pk])
    form = admin_client.get(url).context["adminform"].form
    Product.objects.filter(pk=product.pk).update(stock=7)  # three sold while the editor had the form open
    data = product_form(product, title_en="Longjing 250 g", stock="10", **{"initial-stock": form["stock"].value()})

    response = admin_client.post(url, data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.title, product.stock) == ("Longjing 250 g", 7)


def test_staff_may_set_stock_and_price_on_the_product_form(admin_client):
    product = ProductFactory(stock=10)
    url = reverse("admin:shops_product_change", args=[product.pk])
    data = product_form(product, price="21.00", stock="50", commission_rate="0.1500")

    response = admin_client.post(url, data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.price, product.stock, product.commission_rate) == (Decimal("21.00"), 50, Decimal("0.1500"))


def test_deactivating_products_on_the_changelist_writes_only_the_active_flag(admin_client):
    product = ProductFactory(stock=10)
    changelist = admin_client.get(PRODUCTS)
    Product.objects.filter(pk=product.pk).update(stock=4)  # sold while the list was open
    assert 'name="form-0-price"' not in changelist.content.decode()  # money and stock are not edited in the list
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(product.pk),
        "_save": "Save",
    }

    response = admin_client.post(PRODUCTS, data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.is_active, product.stock) == (False, 4)


def test_the_products_list_names_each_rows_active_box_for_screen_readers(admin_client):
    """The list's "active" tick boxes (list_editable) have no <label>: each is named with its column and its row
    (axe-core's "label" rule, tests/e2e/test_page_sweep.py)."""
    scarf = ProductFactory(title="Wool scarf")

    page = admin_client.get(PRODUCTS).content.decode()

    box = re.search(r'<input type="checkbox" name="form-0-is_active"[^>]*>', page).group(0)
    assert f'aria-label="Active: {scarf.title}"' in box
