"""The signature scheme, and the verification snippet of docs/webhooks.md run against what we really send."""

import hashlib
import hmac
import re
import time
from pathlib import Path

import pytest
from django.conf import settings

from members.webhooks.signing import payload_body, signature_header, signature_verify
from tests.factories import MemberFactory
from tests.webhooks.helpers import announce_commission, endpoint_for

SECRET = "whsec_test-secret"
BODY = payload_body({"id": "evt_1", "type": "order.paid", "created": 1, "data": {"amount": "1.00", "名": "茶"}})


def _doc_verify():
    text = (Path(settings.BASE_DIR) / "docs" / "webhooks.md").read_text()
    code = re.search(r"<!-- verify-snippet -->\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 - our own documentation's snippet
    return namespace["verify"]


@pytest.fixture(params=["service", "docs"])
def verify(request):
    return signature_verify if request.param == "service" else _doc_verify()


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    now = int(time.time())
    header = signature_header([SECRET], now, BODY)
    expected = hmac.new(SECRET.encode(), f"{now}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={now},v1={expected}"


def test_a_fresh_signature_verifies(verify):
    assert verify(SECRET, signature_header([SECRET], int(time.time()), BODY), BODY)


@pytest.mark.parametrize("change", ["body", "secret", "timestamp"])
def test_any_change_breaks_it(verify, change):
    now = int(time.time())
    header = signature_header([SECRET], now, BODY)
    if change == "body":
        assert not verify(SECRET, header, BODY.replace(b"1.00", b"9.00"))
    elif change == "secret":
        assert not verify("whsec_other", header, BODY)
    else:
        assert not verify(SECRET, header.replace(f"t={now}", f"t={now - 1}"), BODY)


@pytest.mark.parametrize(("age", "accepted"), [(0, True), (299, True), (-299, True), (301, False), (-301, False)])
def test_the_timestamp_must_be_within_the_tolerance(verify, age, accepted):
    header = signature_header([SECRET], int(time.time()) - age, BODY)
    assert verify(SECRET, header, BODY) is accepted


@pytest.mark.parametrize("header", ["", "t=1", "v1=abc", "t=x,v1=abc", "garbage", "t=1,t=2,v1=abc"])
def test_a_malformed_header_is_refused_not_an_error(verify, header):
    assert verify(SECRET, header, BODY) is False


def test_either_of_two_signatures_verifies_during_a_rotation(verify):
    header = signature_header(["whsec_new", "whsec_old"], int(time.time()), BODY)
    assert verify("whsec_new", header, BODY) and verify("whsec_old", header, BODY)
    assert not verify("whsec_third", header, BODY)


@pytest.mark.django_db
def test_the_documented_snippet_verifies_a_real_delivery(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    request = receiver.received[0]
    assert _doc_verify()(endpoint.secret, request.headers["X-Signature"], request.body)
