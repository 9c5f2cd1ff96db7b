"""The lock helpers (core/locks.py and each app's locks.py): one place that locks, rows in primary-key order,
advisory keys that never change."""

import hashlib
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.locks import approval_request_lock, user_lock
from commissions.locks import CONFIG_LOCK_KEY, config_lock, plan_lock, policy_in_force_lock, split_queue_claim
from core.locks import advisory_lock, advisory_lock_key, advisory_lock_try, row_lock, rows_lock
from networks.locks import (
    external_order_line_lock,
    external_order_lock,
    external_orders_lock,
    external_orders_marked_claim,
    network_lock,
    report_import_lock,
)
from networks.models import ExternalOrder, Network, ReportImport
from payouts.locks import wallets_lock, withdrawal_lock, withdrawals_lock
from payouts.models import MemberWallet, Withdrawal
from referrals.locks import TREE_LOCK_KEY, member_lock, tree_lock_acquire
from referrals.models import TreeEvent
from shops.locks import checkout_limit_lock, order_lines_lock, order_lock, orders_lock, payment_lock, shop_lock
from shops.models import Order
from tests.factories import MemberFactory

ROOT = Path(__file__).resolve().parents[2]
APP_CODE = [
    path
    for path in ROOT.rglob("*.py")
    if path.relative_to(ROOT).parts[0] not in {"tests", ".venv", "node_modules"}
    and "migrations" not in path.parts
    and not path.relative_to(ROOT).parts[0].startswith(".")
]


# --- One place that locks ---------------------------------------------------------------------------------


def test_no_code_but_core_locks_takes_a_row_or_advisory_lock_itself():
    # Every lock goes through a named helper in the owning app's locks.py, built on core/locks.py (CONVENTIONS).
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in APP_CODE
        if path.relative_to(ROOT) != Path("core/locks.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"select_for_update\(|pg_(try_)?advisory_(xact_)?lock", line)
    ]

    assert APP_CODE, "no application code found"
    assert offenders == []


# --- Rows in primary-key order ----------------------------------------------------------------------------


@pytest.fixture
def events(db):
    """Three rows whose model orders newest first by default (TreeEvent: -created_at), oldest id first."""
    now = timezone.now()
    return [
        TreeEvent.objects.create(kind=TreeEvent.Kind.STATUS, reason=str(n), created_at=now + timedelta(minutes=n))
        for n in range(3)
    ]


def test_rows_are_locked_and_returned_in_primary_key_order_whatever_the_models_ordering(events):
    assert list(TreeEvent.objects.all()) != events  # the default ordering is another one

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = rows_lock(TreeEvent.objects.all())

    assert locked == events
    assert len(queries) == 1  # evaluated at once: a lazy queryset would take no lock
    assert re.search(r'ORDER BY "referrals_treeevent"\."id" ASC', queries[0]["sql"])


def test_rows_lock_returns_values_and_takes_the_first_rows_only(events):
    with transaction.atomic():
        assert rows_lock(TreeEvent.objects.all(), "pk", "reason", limit=2) == [
            (events[0].pk, "0"),
            (events[1].pk, "1"),
        ]
        assert rows_lock(TreeEvent.objects.filter(reason__in=["2", "1"]), "pk", flat=True) == [
            events[1].pk,
            events[2].pk,
        ]
        assert rows_lock(TreeEvent.objects.filter(reason="none")) == []


def test_another_order_is_refused_unless_locked_rows_are_skipped(events):
    with transaction.atomic():
        with pytest.raises(ValueError, match="primary-key order"):
            rows_lock(TreeEvent.objects.all(), order_by=("-created_at",))
        newest_first = rows_lock(TreeEvent.objects.all(), "reason", flat=True, order_by=("-pk",), skip_locked=True)

    assert newest_first == ["2", "1", "0"]


def test_one_row_is_returned_or_its_absence_raised(events):
    with transaction.atomic():
        assert row_lock(TreeEvent.objects.filter(pk=events[1].pk)) == events[1]
        with pytest.raises(TreeEvent.DoesNotExist):
            row_lock(TreeEvent.objects.filter(pk=events[-1].pk + 100))


def test_the_apps_helpers_return_what_their_callers_read(db):
    member = MemberFactory()
    with transaction.atomic():
        assert member_lock(member.pk) == member
        assert member_lock(member.pk + 1000) is None
        wallets = wallets_lock([member.pk, member.pk])  # a wallet the member did not have yet is made

    assert [wallet.member_id for wallet in wallets] == [member.pk]
    assert MemberWallet.objects.filter(member=member).count() == 1


# --- Advisory locks ---------------------------------------------------------------------------------------


def test_advisory_lock_keys_are_the_ones_earlier_releases_took():
    # A rolling deploy runs old and new code at once: a key that changed would let both hold "the" lock.
    def blake(name: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)

    assert TREE_LOCK_KEY == blake(b"referrals.member-tree") == advisory_lock_key("referrals.member-tree")
    assert advisory_lock_key("shops.checkout:+8613800000000") == blake(b"shops.checkout:+8613800000000")
    assert CONFIG_LOCK_KEY == 0x636F6D6D5F636667


@pytest.mark.parametrize(
    "take",
    [
        lambda: advisory_lock(1),
        lambda: advisory_lock_try(1),
        tree_lock_acquire,
        lambda: checkout_limit_lock(["a"]),
        config_lock,
    ],
)
def test_an_advisory_lock_outside_a_transaction_is_a_mistake_said_at_once(transactional_db, take):
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        take()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite serialises writers itself")
def test_on_sqlite_advisory_locks_take_nothing(db):
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        advisory_lock(3, 1, 2)
        assert advisory_lock_try(1) is True

    assert len(queries) == 0


# --- On PostgreSQL: the SQL each named helper sends, and locks that hold ----------------------------------

NO_ROW = 10**9

HELPERS = {
    "shop_lock": (lambda: shop_lock(NO_ROW), ["FOR UPDATE"]),
    "shop_lock with its owner": (lambda: shop_lock(NO_ROW, with_owner=True), ["FOR UPDATE", "JOIN"]),
    "order_lock": (lambda: order_lock(NO_ROW), ["FOR UPDATE"]),
    "orders_lock": (lambda: orders_lock(Order.objects.filter(pk__in=[2, 1]), "pk", flat=True), ["FOR UPDATE", "ORDER"]),
    "order_lines_lock": (lambda: order_lines_lock(Order(pk=NO_ROW)), ["FOR UPDATE", "ORDER"]),
    "payment_lock": (lambda: payment_lock(NO_ROW), ["FOR UPDATE"]),
    "wallets_lock": (lambda: wallets_lock([MemberFactory().pk]), ["FOR UPDATE", "ORDER"]),
    "withdrawal_lock": (lambda: withdrawal_lock(NO_ROW), ["FOR UPDATE"]),
    "withdrawals_lock": (lambda: withdrawals_lock(Withdrawal.objects.all()), ["FOR UPDATE", "ORDER"]),
    "withdrawals_lock skipping": (
        lambda: withdrawals_lock(Withdrawal.objects.all(), "pk", limit=5, skip_locked=True),
        ["FOR UPDATE SKIP LOCKED", "ORDER", "LIMIT 5"],
    ),
    "member_lock": (lambda: member_lock(NO_ROW), ["FOR UPDATE", "ORDER", "LIMIT 1"]),
    "member_lock, no key": (lambda: member_lock(NO_ROW, no_key=True), ["FOR NO KEY UPDATE", "ORDER", "LIMIT 1"]),
    "network_lock": (lambda: network_lock(NO_ROW), ["FOR UPDATE", "LIMIT 1"]),
    "network_lock skipping": (lambda: network_lock(NO_ROW, skip_locked=True), ["FOR UPDATE SKIP LOCKED"]),
    "report_import_lock": (lambda: report_import_lock(ReportImport.objects.defer("content")), ["FOR UPDATE"]),
    "external_order_lock": (lambda: external_order_lock(NO_ROW), ["FOR UPDATE"]),
    "external_order_line_lock": (
        lambda: external_order_line_lock(network=Network(pk=NO_ROW), external_order_id="1", line_id="1"),
        ["FOR UPDATE", "LIMIT 1"],
    ),
    "external_orders_lock skipping": (
        lambda: external_orders_lock(ExternalOrder.objects.all(), "pk", flat=True, skip_locked=True),
        ["FOR UPDATE SKIP LOCKED", "ORDER"],
    ),
    "external_orders_marked_claim": (
        lambda: external_orders_marked_claim(9),
        ["FOR UPDATE SKIP LOCKED", "ORDER", "LIMIT 9", '"ledger_marked_at" IS NOT NULL'],
    ),
    "policy_in_force_lock": (policy_in_force_lock, ["FOR UPDATE", "LIMIT 1"]),
    "plan_lock": (lambda: plan_lock(NO_ROW), ["FOR UPDATE"]),
    "split_queue_claim": (lambda: split_queue_claim(7), ["FOR UPDATE SKIP LOCKED", '"queued_at" ASC', "LIMIT 7"]),
    "user_lock": (lambda: user_lock(NO_ROW), ["FOR UPDATE"]),
    "approval_request_lock": (lambda: approval_request_lock(NO_ROW), ["FOR UPDATE"]),
}


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("name", HELPERS)
def test_each_named_helper_locks_its_rows_in_one_query(name):
    call, expected = HELPERS[name]

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        try:
            call()
        except Exception as error:  # a row that is not there: the query ran all the same
            assert type(error).__name__ == "DoesNotExist"
    locking = [query["sql"] for query in queries if "FOR " in query["sql"]]

    assert len(locking) == 1
    for part in expected:
        assert part in locking[0], (part, locking[0])
    if "ORDER" in expected and "split_queue" not in name:
        assert re.search(r'ORDER BY ("\w+"\."id"|1) ASC', locking[0])  # 1: the pk, when it is the first value


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_advisory_lock_is_held_until_the_transaction_ends():
    answers = []

    def other_transaction():
        try:
            with transaction.atomic():
                answers.append(advisory_lock_try(TREE_LOCK_KEY))
        finally:
            connections.close_all()

    with transaction.atomic():
        tree_lock_acquire()
        thread = threading.Thread(target=other_transaction)
        thread.start()
        thread.join(timeout=30)
    thread = threading.Thread(target=other_transaction)
    thread.start()
    thread.join(timeout=30)

    assert answers == [False, True]
