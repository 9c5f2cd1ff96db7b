"""Fuzzing the payment webhook: the sandbox parser, and the endpoint through the test client.

Property: whatever arrives, the parser returns a notice the service can store, or raises WebhookRejected; the
endpoint answers 200 or 400 (never an exception), and a 400 changes nothing in the database. Signed bodies are
signed with the real secret, so the fuzzing reaches past the signature check into the body's decoding.
"""

import json
import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shops.models import Order, OrderEvent, Payment, WebhookEvent
from shops.payments import WebhookNotice, WebhookRejected
from shops.payments.sandbox import EVENT_TYPES, SIGNATURE_HEADER, SandboxProvider, sign
from shops.services import payment_start
from tests.factories import ProductFactory, place_order, shop_with_products

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ_CLIENT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any code point, lone surrogates included (they cannot be stored as UTF-8).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
weird_strings = st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\ud800", "é", "x" * 101, "x" * 300, "NaN", "sNaN", "Infinity", "-Infinity",
     "1e999999999", "-0", "0x10", "1,00", " 19.90 ", "19.90\n", "١٩٫٩٠", "None", "null", "[]", "{}"]
)  # fmt: skip
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | any_text | weird_strings | st.integers(10**20, 10**400)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text | weird_strings, children, max_size=4),
    max_leaves=12,
)
amounts = (st.decimals() | st.decimals(allow_nan=False, allow_infinity=False, places=2)).map(str) | json_values


references = st.text(max_size=20) | weird_strings


def events(reference=references, amount=amounts):
    """Bodies shaped like the provider's events, with any field replaced by something else."""
    data = st.fixed_dictionaries(
        {"payment": reference, "amount": amount}, optional={"currency": json_values, "extra": json_values}
    )
    return (
        st.fixed_dictionaries(
            {
                "id": st.text(max_size=20).map(lambda text: f"evt_{text}") | json_values,
                "type": st.sampled_from(EVENT_TYPES) | json_values,
                "data": data | json_values,
            },
            optional={"created": json_values, "livemode": json_values},
        )
        | json_values
    )


def encoded(event) -> bytes:
    return json.dumps(event).encode()  # NaN/Infinity allowed, as a careless sender would


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


bodies = st.binary(max_size=200) | events().map(encoded) | st.integers(1, 50_000).map(nested)


def signed_headers(body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(body, int(time.time()) if timestamp is None else timestamp)}


def assert_storable(notice: WebhookNotice) -> None:
    """What the service needs from a notice: it fits the WebhookEvent row and compares with a payment."""
    assert notice.event_type in EVENT_TYPES
    assert isinstance(notice.event_id, str) and 1 <= len(notice.event_id) <= 100 and "\x00" not in notice.event_id
    assert isinstance(notice.payment_reference, str) and "\x00" not in notice.payment_reference
    notice.payment_reference.encode()
    assert isinstance(notice.amount, Decimal) and notice.amount.is_finite()
    stored = json.dumps(notice.payload, allow_nan=False)
    assert "\\u0000" not in stored
    stored.encode()


def parse(body: bytes, headers) -> WebhookNotice | None:
    try:
        notice = SandboxProvider().parse_webhook(body, headers)
    except WebhookRejected:
        return None
    assert_storable(notice)
    return notice


# --- The parser ------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=300), header=any_text | st.text(alphabet="tv1=,0123456789abcdef ", max_size=90))
@example(body=b"{}", header="t=" + "9" * 400 + ",v1=00")  # a timestamp too large for a float
@example(body=b"{}", header="t=1,v1=é")  # a non-ASCII signature: hmac.compare_digest raises TypeError
def test_parser_refuses_unsigned_or_badly_signed_input(body, header):
    assert parse(body, {SIGNATURE_HEADER: header}) is None


@FUZZ
@given(body=bodies)
@example(body=nested(100_000))  # deeper than the JSON decoder's recursion limit: RecursionError
@example(body=b'{"id":"evt_1","type":"payment.succeeded","data":{"payment":"p","amount":"sNaN"}}')
@example(body=b'{"id":"evt_1","type":"payment.succeeded","data":{"payment":"p","amount":"Infinity"}}')
@example(body=b'{"id":"evt_1","type":"payment.succeeded","data":{"payment":"p","amount":"1"},"x":NaN}')
@example(body=b'{"id":"evt_1","type":"payment.succeeded","data":{"payment":"p\\u0000","amount":"1"}}')
@example(body=b'{"id":"evt_1","type":"payment.succeeded","data":{"payment":"\\ud800","amount":"1"}}')
@example(body=('{"id":"' + "e" * 101 + '","type":"payment.failed","data":{"payment":"p","amount":"1"}}').encode())
@example(body=b'{"id":"evt_1","type":"payment.succeeded","data":{"payment":"p","amount":true}}')
def test_parser_accepts_only_storable_notices_from_signed_bodies(body):
    parse(body, signed_headers(body))


@FUZZ
@given(body=bodies, skew=st.integers(-(10**12), 10**12))
def test_parser_refuses_signed_bodies_outside_the_tolerance(body, skew):
    notice = parse(body, signed_headers(body, timestamp=int(time.time()) + skew))
    assert notice is None or abs(skew) <= 301


# --- The endpoint, through the test client ------------------------------------------


@pytest.fixture
def pending_payment(db):
    order = place_order(shop_with_products(ProductFactory(price=Decimal("19.90"))))
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    return payment


def snapshot(payment: Payment) -> tuple:
    payment.refresh_from_db()
    order = Order.objects.get(pk=payment.order_id)
    return (
        WebhookEvent.objects.count(),
        OrderEvent.objects.count(),
        Payment.objects.count(),
        payment.status,
        order.status,
    )


def post_webhook(client, body: bytes, headers: dict, provider: str = "sandbox"):
    return client.post(
        f"/payments/webhook/{provider}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


@FUZZ_CLIENT
@given(body=st.binary(max_size=200) | events().map(encoded), header=any_text)
def test_endpoint_refuses_forged_webhooks_and_changes_nothing(client, pending_payment, body, header):
    before = snapshot(pending_payment)
    response = post_webhook(client, body, {SIGNATURE_HEADER: header.encode("utf-8", "replace").decode("latin-1")})
    assert response.status_code == 400
    assert snapshot(pending_payment) == before


@FUZZ_CLIENT
@given(data=st.data())
def test_endpoint_answers_signed_webhooks_with_200_or_400_and_a_refusal_changes_nothing(client, pending_payment, data):
    reference = st.just(pending_payment.reference) | weird_strings
    amount = st.sampled_from(["19.90", "19.9", "19.900", "NaN", "sNaN", "Infinity", "1e999999999", "-19.90"]) | amounts
    body = data.draw(events(reference=reference, amount=amount).map(encoded) | st.binary(max_size=100), label="body")
    before = snapshot(pending_payment)
    response = post_webhook(client, body, signed_headers(body))
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert snapshot(pending_payment) == before
    else:
        event_id = str(json.loads(body)["id"])
        assert WebhookEvent.objects.filter(provider="sandbox", event_id=event_id).exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"evt_nan","type":"payment.succeeded","data":{"payment":"%s","amount":"19.90"},"x":NaN}',
        b'{"id":"evt_snan","type":"payment.succeeded","data":{"payment":"%s","amount":"sNaN"}}',
        b'{"id":"evt_nul","type":"payment.succeeded","data":{"payment":"%s","amount":"19.90"},"x":"\\u0000"}',
        b'{"id":"evt_sur","type":"payment.succeeded","data":{"payment":"%s","amount":"19.90"},"x":"\\ud800"}',
        b'{"id":"' + b"e" * 101 + b'","type":"payment.succeeded","data":{"payment":"%s","amount":"19.90"}}',
    ],
    ids=["nan-in-payload", "signalling-nan-amount", "nul-in-payload", "lone-surrogate", "long-event-id"],
)
def test_endpoint_refuses_signed_bodies_the_database_cannot_store(client, pending_payment, body):
    body = body.replace(b"%s", pending_payment.reference.encode())
    before = snapshot(pending_payment)

    response = post_webhook(client, body, signed_headers(body))

    assert response.status_code == 400
    assert snapshot(pending_payment) == before


def test_endpoint_refuses_an_unknown_provider_and_a_get(client, pending_payment):
    body = b"{}"
    assert post_webhook(client, body, signed_headers(body), provider="nope").status_code == 400
    assert client.get("/payments/webhook/sandbox/").status_code == 405
