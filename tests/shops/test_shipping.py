"""Shipping with a courier and waybill number (issue #22): the service (validated, idempotent, audited, through the
one transition), the admin's action, the fulfilment API for staff tokens, and the buyer's order timeline."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import token_create
from shops import services
from shops.couriers import COURIERS, waybill_normalise
from shops.models import Order, OrderEvent
from shops.selectors import order_timeline
from shops.services import (
    IllegalTransition,
    ShopError,
    order_cancel,
    order_mark_completed,
    order_mark_shipped,
    order_refund,
)
from tests.factories import (
    BUYER,
    MemberFactory,
    ProductFactory,
    UserFactory,
    pay_order,
    place_order,
    shop_with_products,
)

pytestmark = pytest.mark.django_db

Status = Order.Status
ORDERS = reverse("admin:shops_order_changelist")
SF = "SF1234567890123"


@pytest.fixture
def shop():
    return shop_with_products(ProductFactory(price=Decimal("10.00")))


@pytest.fixture
def paid(shop):
    return pay_order(place_order(shop))


def _state(order: Order) -> tuple:
    order.refresh_from_db()
    return order.status, order.courier, order.waybill_number, order.shipped_at, order.events.count()


# --- The service ------------------------------------------------------------------------------------------------


def test_shipping_records_courier_and_waybill_on_the_order_and_its_status_event(paid, staff_user):
    order = order_mark_shipped(order=paid, actor=staff_user, courier="sf", waybill=" sf 1234 5678 90123 ")

    order.refresh_from_db()
    assert order.status == Status.SHIPPED and order.shipped_at is not None
    assert (order.courier, order.waybill_number) == ("sf", SF)
    event = order.events.get(kind=OrderEvent.Kind.STATUS, to_status=Status.SHIPPED)
    assert event.from_status == Status.PAID and event.actor == staff_user and event.actor_label == "staff"
    assert event.detail == {"courier": "sf", "waybill": SF}


def test_shipping_goes_through_the_one_transition(paid, monkeypatch):
    seen = []
    original = services._order_transition

    def spy(order, to_status, **kwargs):
        seen.append((order.pk, to_status))
        return original(order, to_status, **kwargs)

    monkeypatch.setattr(services, "_order_transition", spy)

    order_mark_shipped(order=paid, courier="zto", waybill="731234567890")

    assert seen == [(paid.pk, Status.SHIPPED)]


def test_shipping_twice_with_the_same_waybill_changes_nothing(paid, staff_user):
    order_mark_shipped(order=paid, actor=staff_user, courier="sf", waybill=SF)
    before = _state(paid)

    again = order_mark_shipped(order=paid, actor=staff_user, courier="SF", waybill=SF.lower())

    assert again.status == Status.SHIPPED
    assert _state(paid) == before


def test_the_same_waybill_after_completion_is_still_accepted_and_changes_nothing(paid, staff_user):
    order_mark_shipped(order=paid, courier="jd", waybill="JDVA01234567890")
    order_mark_completed(order=paid, actor=staff_user)
    before = _state(paid)

    order_mark_shipped(order=paid, courier="jd", waybill="JDVA01234567890")

    assert _state(paid) == before


def test_a_different_waybill_corrects_an_order_on_its_way_and_is_audited(paid, staff_user):
    order_mark_shipped(order=paid, courier="sf", waybill=SF)
    shipped_at = Order.objects.get(pk=paid.pk).shipped_at

    order_mark_shipped(order=paid, actor=staff_user, courier="yto", waybill="YT7001234567890", note="typo")

    order = Order.objects.get(pk=paid.pk)
    assert order.status == Status.SHIPPED and order.shipped_at == shipped_at
    assert (order.courier, order.waybill_number) == ("yto", "YT7001234567890")
    correction = order.events.get(kind=OrderEvent.Kind.SHIPMENT)
    assert correction.actor == staff_user and correction.note == "typo"
    assert correction.detail == {
        "courier": "yto",
        "waybill": "YT7001234567890",
        "before": {"courier": "sf", "waybill": SF},
    }
    assert order.events.filter(kind=OrderEvent.Kind.STATUS, to_status=Status.SHIPPED).count() == 1


def test_a_shipped_order_without_a_waybill_can_be_given_one(paid):
    order_mark_shipped(order=paid)

    order_mark_shipped(order=paid, courier="ems", waybill="EA123456789CN")

    paid.refresh_from_db()
    assert (paid.courier, paid.waybill_number) == ("ems", "EA123456789CN")
    assert paid.events.filter(kind=OrderEvent.Kind.SHIPMENT).count() == 1


def test_a_completed_orders_shipment_cannot_be_changed(paid, staff_user):
    order_mark_shipped(order=paid, courier="sf", waybill=SF)
    order_mark_completed(order=paid, actor=staff_user)
    before = _state(paid)

    with pytest.raises(ShopError) as caught:
        order_mark_shipped(order=paid, courier="sf", waybill="SF9999999999999")

    assert caught.value.code == "shipment_closed"
    assert _state(paid) == before


@pytest.mark.parametrize(
    ("courier", "waybill", "code"),
    [
        ("dhl-moon", SF, "courier"),  # not in the table
        ("", SF, "courier"),  # a number without a courier
        ("sf", "", "waybill"),  # a courier without a number
        ("sf", "12345", "waybill"),  # too short
        ("sf", "SF12345678901234567890123456789012", "waybill"),  # too long
        ("sf", "SF123456<script>", "waybill"),
        ("sf", "顺丰1234567890", "waybill"),
        ("sf", "-SF1234567890", "waybill"),
    ],
)
def test_bad_courier_or_waybill_is_refused_and_changes_nothing(paid, courier, waybill, code):
    before = _state(paid)

    with pytest.raises(ShopError) as caught:
        order_mark_shipped(order=paid, courier=courier, waybill=waybill)

    assert caught.value.code == code
    assert caught.value.messages[0]
    assert _state(paid) == before


def test_shipping_an_unpaid_or_cancelled_order_with_a_waybill_is_illegal(shop):
    unpaid = place_order(shop)
    cancelled = place_order(shop)
    order_cancel(order=cancelled, actor_label="buyer")

    for order in (unpaid, cancelled):
        before = _state(order)
        with pytest.raises(IllegalTransition):
            order_mark_shipped(order=order, courier="sf", waybill=SF)
        assert _state(order) == before


def test_waybill_normalise_takes_what_people_paste():
    assert waybill_normalise(" sf 1234\t5678 ") == "SF12345678"
    assert waybill_normalise(None) == ""


def test_every_known_courier_but_other_has_a_tracking_link():
    for code, courier in COURIERS.items():
        url = courier.tracking_url(SF)
        if code == "other":
            assert url == ""
        else:
            assert url.startswith("https://") and url.endswith(f"nu={SF}")


# --- The admin's action -----------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _ship(admin_client, *orders: Order, apply: bool = True, **fields):
    data = {"action": "ship_with_waybill", ACTION_CHECKBOX_NAME: [order.pk for order in orders], "index": "0"}
    if apply:
        data["apply"] = "1"
    data.update(fields)
    return admin_client.post(ORDERS, data, follow=True)


def test_admin_action_shows_a_form_per_order(admin_client, paid):
    response = _ship(admin_client, paid, apply=False)

    assert response.status_code == 200
    page = response.content.decode()
    assert paid.number in page
    assert f'name="courier_{paid.pk}"' in page and f'name="waybill_{paid.pk}"' in page
    assert Order.objects.get(pk=paid.pk).status == Status.PAID


def test_admin_action_ships_with_courier_and_waybill(admin_client, paid, shop, staff_user):
    second = pay_order(place_order(shop))

    response = _ship(
        admin_client,
        paid,
        second,
        **{f"courier_{paid.pk}": "sf", f"waybill_{paid.pk}": SF},
        **{f"courier_{second.pk}": "zto", f"waybill_{second.pk}": "73 1234 5678 90"},
        note="Left the warehouse",
    )

    messages = [str(message) for message in response.context["messages"]]
    assert "Recorded the shipments of 2 orders." in messages
    paid.refresh_from_db()
    second.refresh_from_db()
    assert (paid.status, paid.courier, paid.waybill_number) == (Status.SHIPPED, "sf", SF)
    assert (second.status, second.courier, second.waybill_number) == (Status.SHIPPED, "zto", "731234567890")
    event = paid.events.get(to_status=Status.SHIPPED)
    assert event.actor == staff_user and event.note == "Left the warehouse"


def test_admin_action_shows_bad_waybill_beside_its_field_and_ships_nothing(admin_client, paid, shop):
    second = pay_order(place_order(shop))

    response = _ship(
        admin_client,
        paid,
        second,
        **{f"courier_{paid.pk}": "sf", f"waybill_{paid.pk}": SF},
        **{f"courier_{second.pk}": "sf", f"waybill_{second.pk}": "??"},
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert f"waybill_{second.pk}" in form.errors
    assert "A waybill number is 6 to 32 letters and digits" in response.content.decode()
    assert Order.objects.filter(status=Status.SHIPPED).count() == 0


def test_admin_action_says_which_chosen_orders_it_leaves_out(admin_client, paid, shop):
    unpaid = place_order(shop)

    response = _ship(admin_client, paid, unpaid, apply=False)

    messages = [str(message) for message in response.context["messages"]]
    assert "1 chosen order is left out: it is not paid or on its way." in messages
    assert [row["order"].pk for row in response.context["form"].rows()] == [paid.pk]


def test_admin_action_leaves_out_orders_that_are_not_paid_or_on_their_way(admin_client, shop):
    unpaid = place_order(shop)

    response = _ship(admin_client, unpaid, apply=False)

    messages = [str(message) for message in response.context["messages"]]
    assert "None of the chosen orders is paid or on its way." in messages
    assert Order.objects.get(pk=unpaid.pk).status == Status.PENDING_PAYMENT


def test_admin_order_page_shows_the_shipment(admin_client, paid):
    order_mark_shipped(order=paid, courier="sf", waybill=SF)

    response = admin_client.get(reverse("admin:shops_order_change", args=[paid.pk]))

    assert response.status_code == 200
    assert SF in response.content.decode()


# --- The fulfilment API -----------------------------------------------------------------------------------------


def _shipment_url(order) -> str:
    return reverse("shops-api:fulfilment-order-shipment", args=[order.number])


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='warehouse').key}")
    return client


@pytest.fixture
def warehouse():
    """A staff user with only the permission to change orders, through an API token."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_order", content_type__app_label="shops"))
    return _token_client(user)


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"} and body["message"]
    if code:
        assert body["code"] == code
    return body


def test_fulfilment_api_ships_an_order_and_a_retry_changes_nothing(warehouse, paid):
    body = {"courier": "sf", "waybill_number": "sf 1234 5678 90123", "note": "pallet 7"}

    first = warehouse.post(_shipment_url(paid), body, format="json")

    assert first.status_code == 200, first.content
    data = first.json()
    assert data["number"] == paid.number and data["status"] == "shipped"
    assert data["courier"] == "sf" and data["courier_name"] == "SF Express" and data["waybill_number"] == SF
    assert data["tracking_url"] == f"https://www.kuaidi100.com/chaxun?com=shunfeng&nu={SF}"
    event = Order.objects.get(pk=paid.pk).events.get(to_status=Status.SHIPPED)
    assert event.actor_label == "fulfilment API" and event.note == "pallet 7" and event.actor.is_staff
    before = _state(paid)

    again = warehouse.post(_shipment_url(paid), body, format="json")

    assert again.status_code == 200 and again.json() == data
    assert _state(paid) == before


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"courier": "pigeon", "waybill_number": SF}, "courier", "courier"),
        ({"courier": "sf", "waybill_number": "12"}, "waybill_number", "waybill"),
        ({"courier": "sf", "waybill_number": ""}, "waybill_number", "invalid"),  # the serializer: required
        ({"waybill_number": SF}, "courier", "invalid"),
        ({"courier": "sf", "waybill_number": "x" * 65}, "waybill_number", "invalid"),
        ({"courier": ["sf"], "waybill_number": SF}, "courier", "invalid"),
    ],
)
def test_fulfilment_api_refuses_bad_input_with_a_400(warehouse, paid, body, field, code):
    before = _state(paid)

    error = _error(warehouse.post(_shipment_url(paid), body, format="json"), 400, code)

    assert field in error["fields"]
    assert _state(paid) == before


def test_fulfilment_api_answers_409_for_an_unpaid_order(warehouse, shop):
    unpaid = place_order(shop)

    _error(warehouse.post(_shipment_url(unpaid), {"courier": "sf", "waybill_number": SF}, format="json"), 409)

    assert Order.objects.get(pk=unpaid.pk).status == Status.PENDING_PAYMENT


def test_fulfilment_api_answers_409_for_a_changed_waybill_of_a_refunded_order(warehouse, paid, staff_user):
    order_mark_shipped(order=paid, courier="sf", waybill=SF)
    order_refund(order=paid, actor=staff_user, reason="lost")

    _error(
        warehouse.post(_shipment_url(paid), {"courier": "sf", "waybill_number": "SF0000000000001"}, format="json"),
        409,
        "shipment_closed",
    )


def test_fulfilment_api_unknown_order_is_404(warehouse):
    _error(warehouse.post("/api/v1/fulfilment/orders/0000/shipment/", {"courier": "sf", "waybill_number": SF}), 404)


def test_fulfilment_api_is_for_staff_who_may_change_orders(paid):
    body = {"courier": "sf", "waybill_number": SF}
    url = _shipment_url(paid)
    member = MemberFactory()
    staff_without_permission = UserFactory(is_staff=True)
    inactive_staff = UserFactory(is_staff=True, is_superuser=True)

    _error(APIClient().post(url, body, format="json"), 401)
    _error(_token_client(member.user).post(url, body, format="json"), 403)
    _error(_token_client(staff_without_permission).post(url, body, format="json"), 403)
    client = _token_client(inactive_staff)
    inactive_staff.is_active = False
    inactive_staff.save(update_fields=["is_active"])
    assert client.post(url, body, format="json").status_code in (401, 403)
    assert Order.objects.get(pk=paid.pk).status == Status.PAID


# --- The buyer's timeline ---------------------------------------------------------------------------------------


def _buyer_page(client, order) -> str:
    found = client.post(reverse("shops:order_lookup"), {"number": order.number, "contact": BUYER.phone})
    assert found.status_code == 302
    response = client.get(found["Location"])
    assert response.status_code == 200
    return response.content.decode()


def test_timeline_steps_from_the_events(paid, staff_user):
    assert [(step.code, step.is_done) for step in order_timeline(paid)] == [
        ("placed", True),
        ("paid", True),
        ("shipped", False),
        ("completed", False),
    ]
    order_mark_shipped(order=paid, courier="sf", waybill="SF0000000000001")
    order_mark_shipped(order=paid, courier="sf", waybill=SF)  # a correction: the latest number shows
    order_mark_completed(order=paid, actor=staff_user)
    order_refund(order=paid, actor=staff_user, reason="broken")

    steps = order_timeline(Order.objects.get(pk=paid.pk))

    assert [step.code for step in steps] == ["placed", "paid", "shipped", "completed", "refund"]
    assert all(step.is_done for step in steps)
    shipped = steps[2]
    assert shipped.courier.code == "sf" and shipped.waybill == SF
    assert shipped.tracking_url == f"https://www.kuaidi100.com/chaxun?com=shunfeng&nu={SF}"
    assert steps[4].amount == Decimal("10.00") and steps[4].is_full


def test_a_partial_refund_is_not_full(shop, staff_user):
    order = pay_order(place_order(shop, {shop.listings.first().product: 2}))
    line = order.lines.get()

    order_refund(order=order, quantities={line.pk: 1}, actor=staff_user, reason="one broken")

    steps = order_timeline(Order.objects.get(pk=order.pk))
    assert [step.code for step in steps] == ["placed", "paid", "refund", "shipped", "completed"]  # still to ship
    refund = steps[2]
    assert (refund.amount, refund.is_full, refund.is_done) == (Decimal("10.00"), False, True)


def test_buyer_page_shows_the_shipped_timeline_with_a_tracking_link(client, paid):
    order_mark_shipped(order=paid, courier="sf", waybill=SF)

    page = _buyer_page(client, paid)

    assert "Order progress" in page
    assert 'data-step="placed"' in page and 'data-step="paid"' in page and 'data-step="shipped"' in page
    assert "SF Express" in page and SF in page
    assert f'href="https://www.kuaidi100.com/chaxun?com=shunfeng&amp;nu={SF}"' in page
    assert 'class="step upcoming" data-step="completed"' in page


def test_buyer_page_shows_another_couriers_number_without_a_tracking_link(client, paid):
    order_mark_shipped(order=paid, courier="other", waybill="ABC123456")

    page = _buyer_page(client, paid)

    assert "Other courier" in page and "ABC123456" in page
    assert "kuaidi100" not in page and "Track the parcel" not in page


def test_buyer_page_of_an_unpaid_order_has_no_timeline(client, shop):
    order = place_order(shop)

    assert "Order progress" not in _buyer_page(client, order)
