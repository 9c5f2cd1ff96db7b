"""The audit log (staff/audit.py): every audited change in one list, filterable, paged by cursor, as CSV."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from commissions.services import plan_activate, plan_create, policy_publish
from payouts.services import payout_batch_create, withdrawal_approve, withdrawal_request
from referrals.models import TreeEvent
from referrals.services import member_move
from shops.services import order_refund
from tests.factories import (
    MemberFactory,
    ProductFactory,
    UserFactory,
    inline_management_data,
    pay_order,
    place_order,
    shop_with_products,
)
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db

AUDIT = reverse("staff:audit_log")


@pytest.fixture
def auditor(client):
    user = UserFactory(is_staff=True, email="auditor@example.com")
    user.user_permissions.add(Permission.objects.get(codename="view_audit_log"))
    client.force_login(user)
    return user


@pytest.fixture
def history(staff_user):
    """One of each audited change; `staff_user` (a superuser) is the actor wherever staff act."""
    founder, other_root = MemberFactory(), MemberFactory()
    member = MemberFactory(sponsor=founder)
    member_move(member=member, new_sponsor=other_root, actor=staff_user, reason="asked by both sponsors")
    order = pay_order(place_order(shop_with_products(ProductFactory(price=Decimal("50.00")))))
    order_refund(order=order, quantities=None, actor=staff_user, reason="damaged in transit")
    credit(member, "100.00")
    bank_account(member)
    withdrawal = withdrawal_request(member=member, amount=Decimal("30.00"))
    withdrawal_approve(withdrawal=withdrawal, actor=staff_user)
    batch = payout_batch_create(provider_name="manual", actor=staff_user)
    policy = policy_publish(actor=staff_user, note='=HYPERLINK("http://evil")', max_payout_ratio=Decimal("0.2500"))
    plan = plan_activate(plan=plan_create(actor=staff_user, name="Spring", rates=(Decimal("0.6"),)), actor=staff_user)
    return {"member": member, "order": order, "withdrawal": withdrawal, "batch": batch, "policy": policy, "plan": plan}


def _kinds(response) -> list[str]:
    return [item["row"].kind for item in response.context["rows"]]


def test_every_kind_of_audited_change_is_listed_newest_first(auditor, client, history):
    response = client.get(AUDIT)

    assert response.status_code == 200
    kinds = set(_kinds(response))
    assert {
        "tree.join",
        "tree.move",
        "order.placed",
        "order.payment",
        "order.refund",
        "withdrawal.requested",
        "withdrawal.approved",
        "withdrawal.processing",
        "payout_batch.created",
        "policy.published",
        "plan.created",
        "plan.activated",
    } <= kinds
    times = [item["row"].at for item in response.context["rows"]]
    assert times == sorted(times, reverse=True)


def test_admin_edits_are_in_the_log(staff_user, client):
    # given: a superuser changes a product's commission rate in the admin
    product = ProductFactory(commission_rate=Decimal("0.1000"))
    client.force_login(staff_user)
    url = reverse("admin:shops_product_change", args=[product.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"commission_rate": "0.2000", "image": "", "initial-stock": data["stock"]})
    data.update(inline_management_data(client.get(url)))  # the inlines (sharing materials) left as they are
    assert client.post(url, data).status_code == 302

    # then
    response = client.get(AUDIT, {"kind": "admin.change"})
    rows = [item["row"] for item in response.context["rows"]]
    assert len(rows) == 1
    assert rows[0].actor_id == staff_user.pk and rows[0].object_id == str(product.pk)
    assert "Commission rate" in rows[0].detail or "commission" in rows[0].detail.lower()


def test_filters_by_kind_actor_object_and_date(auditor, client, history, staff_user):
    by_kind = client.get(AUDIT, {"kind": ["tree.move", "withdrawal.approved"]})
    assert sorted(_kinds(by_kind)) == ["tree.move", "withdrawal.approved"]

    by_actor = client.get(AUDIT, {"actor": staff_user.email})
    assert by_actor.context["rows"] and all(item["row"].actor_id == staff_user.pk for item in by_actor.context["rows"])
    assert "tree.join" not in _kinds(by_actor)  # members joined by themselves

    system = client.get(AUDIT, {"actor": "system"})
    assert system.context["rows"] and all(item["row"].actor_id is None for item in system.context["rows"])

    order = history["order"]
    by_object = client.get(AUDIT, {"object_type": "order", "object_id": order.number})
    assert {item["row"].object_id for item in by_object.context["rows"]} == {order.number}
    assert {"order.placed", "order.payment", "order.refund"} <= set(_kinds(by_object))

    member = client.get(AUDIT, {"object_type": "member", "object_id": str(history["member"].pk)})
    assert sorted(_kinds(member)) == ["tree.join", "tree.move"]

    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert client.get(AUDIT, {"date_from": tomorrow}).context["rows"] == []
    today = timezone.localdate()
    all_rows = [item["row"] for item in client.get(AUDIT).context["rows"]]
    todays = [item["row"] for item in client.get(AUDIT, {"date_from": today, "date_to": today}).context["rows"]]
    assert todays == [row for row in all_rows if timezone.localdate(row.at) == today]
    assert len(todays) < len(all_rows)  # the default policy and plan of the first migration are older


def test_bad_filters_are_form_errors_not_failures(auditor, client, history):
    cases = [
        {"date_from": "2026-13-40"},
        {"date_from": "2026-12-02", "date_to": "2026-12-01"},
        {"actor": "nobody-has-this@example.com"},
        {"object_id": "123"},  # no object type
        {"kind": "tree.explode"},
    ]
    for params in cases:
        response = client.get(AUDIT, params)
        assert response.status_code == 200, params
        assert response.context["form"].errors, params
        assert response.context["rows"] == [], params

    # an id that cannot exist, and a forged page cursor: no rows or a clear note, never a 500
    huge = client.get(AUDIT, {"object_type": "member", "object_id": "99999999999999999999"})
    assert huge.status_code == 200 and huge.context["rows"] == []
    forged = client.get(AUDIT, {"before": "yesterday|x|1"})
    assert forged.status_code == 200 and forged.context["cursor_error"] and forged.context["rows"] == []


def test_paging_by_cursor_visits_every_row_once(auditor, client):
    # given: 130 joins in the same few milliseconds (ties on time are broken by source and id)
    founder = MemberFactory()
    for _ in range(129):
        MemberFactory(sponsor=founder)
    expected = set(TreeEvent.objects.values_list("pk", flat=True))
    assert len(expected) == 130

    seen, pages, url = [], 0, f"{AUDIT}?kind=tree.join"
    while url:
        response = client.get(url)
        pages += 1
        seen += [item["row"].pk for item in response.context["rows"]]
        next_query = response.context["next_query"]
        url = f"{AUDIT}?{next_query}" if next_query else None

    assert pages == 3
    assert len(seen) == len(set(seen)) == 130
    assert set(seen) == expected


def test_csv_export_has_every_matching_row_and_defuses_formulas(auditor, client, history):
    response = client.get(AUDIT, {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "kind", "actor", "object type", "object id", "object", "amount", "detail"]
    kinds = [row[1] for row in rows[1:]]
    assert len(kinds) == len(client.get(AUDIT).context["rows"])  # fewer than a page here: all of them
    refund = next(row for row in rows[1:] if row[1] == "order.refund")
    assert refund[6] == "50.00" or refund[6] == "-50.00" or Decimal(refund[6]).copy_abs() == Decimal("50.00")
    policy = next(row for row in rows[1:] if row[1] == "policy.published" and "HYPERLINK" in row[7])
    assert not policy[7].startswith("=")


def test_only_staff_with_the_permission_see_it(client, history):
    assert client.get(AUDIT).status_code == 302  # to the admin login
    client.force_login(UserFactory(is_staff=True))
    assert client.get(AUDIT).status_code == 403
    assert client.get(AUDIT, {"format": "csv"}).status_code == 403


def test_page_queries_do_not_grow_with_rows(auditor, client, django_assert_max_num_queries):
    founder = MemberFactory()
    for _ in range(5):
        pay_order(place_order(shop_with_products(owner=MemberFactory(sponsor=founder))))
    # session, user, permissions, one query per source (18, with the external orders, the shop owner changes, the
    # identities, the invoices, the tax reports, the risk decisions, the four-eyes requests asked and decided, the
    # evidence packs and the staff balance adjustments), the actors' emails
    with django_assert_max_num_queries(24):
        small = client.get(AUDIT)
    for _ in range(40):
        pay_order(place_order(shop_with_products(owner=MemberFactory(sponsor=founder))))
    with django_assert_max_num_queries(24):
        large = client.get(AUDIT)
    assert len(small.context["rows"]) < len(large.context["rows"]) == 50
