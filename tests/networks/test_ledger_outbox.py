"""The networks app never writes the ledger: it records what a network reports and marks the line
(`ExternalOrder.ledger_marked_at`), and after the commit tells the ledger's keeper (`networks.signals`). The
commissions app pulls: its task writes the marked lines and clears the marks, when told and on the beat, so a lost
message loses nothing, and running it again writes nothing more (issue #20)."""

import ast
import logging
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections, transaction
from django.db.models import Sum
from django.utils import timezone
from kombu.exceptions import OperationalError

import commissions.receivers
from commissions.models import CommissionEntry as Entry
from commissions.receivers import EXTERNAL_ORDERS_MARKED_UID, receivers_connect
from commissions.services import external_line_apply, external_lines_apply
from commissions.tasks import external_lines_apply_task
from config.celery import app
from networks import services as networks_services
from networks.connectors.base import OrderStatus
from networks.locks import external_order_lock
from networks.models import ExternalOrder, ExternalProduct, Network, SyncRun
from networks.services import external_products_sync, tracking_id_for
from networks.signals import external_orders_marked
from tests.commissions.test_external_ledger import assert_ledger_clean, report
from tests.factories import after_commit, make_chain
from tests.payouts.test_money import ensure_plan_in_force

pytestmark = pytest.mark.django_db

NETWORKS_APP = Path(__file__).resolve().parents[2] / "networks"
BEAT_ENTRY = "commissions-external-lines"

# As production runs them: what their transactions leave for after the commit runs when they return.
external_order_record = after_commit(networks_services.external_order_record)
network_sync = after_commit(networks_services.network_sync)


@pytest.fixture
def network(db):
    ensure_plan_in_force()  # 2 levels, 80 % / 20 %, payout ratio ≤ 30 % of the paid amount
    return Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})[0]


@pytest.fixture
def sharer(network):
    return make_chain(3)[-1]


@pytest.fixture
def keeper_not_listening():
    """The commissions app's receiver of `external_orders_marked` disconnected: every message is lost."""
    assert external_orders_marked.disconnect(dispatch_uid=EXTERNAL_ORDERS_MARKED_UID)
    yield
    receivers_connect()


def by_level(line) -> dict[int, Decimal]:
    return dict(Entry.objects.filter(external_line=line).values_list("level").annotate(total=Sum("amount")))


def beat_pass() -> int:
    """The beat's entry for marked external lines, run as the beat runs it (by the task's name)."""
    return app.tasks[django_settings.CELERY_BEAT_SCHEDULE[BEAT_ENTRY]["task"]].apply().get()


def test_the_beat_runs_the_pass_every_minute():
    assert django_settings.CELERY_BEAT_SCHEDULE[BEAT_ENTRY] == {
        "task": "commissions.tasks.external_lines_apply_task",
        "schedule": 60.0,
        "options": {"expires": 60.0},  # a run not started by the next one is dropped (config/beat.py)
    }


def test_a_recorded_line_is_written_to_the_ledger_after_the_commit(network, sharer):
    tracking = tracking_id_for(network=network, member=sharer).value

    external_order_record(network=network, reported=report(tracking), source="sync")

    line = ExternalOrder.objects.get()
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("9.60"), 2: Decimal("2.40")}
    assert (line.split.revision, line.ledger_marked_at) == (1, None)


def test_inside_its_transaction_the_network_only_marks_the_line(network, sharer):
    tracking = tracking_id_for(network=network, member=sharer).value

    # the test's transaction never commits: nothing after the commit runs
    networks_services.external_order_record(network=network, reported=report(tracking), source="sync")

    line = ExternalOrder.objects.get()
    assert line.ledger_marked_at is not None
    assert not Entry.objects.exists()


def test_a_sync_with_the_keeper_not_listening_writes_no_entry_and_the_beat_writes_them_once(
    network, sharer, sandbox_network, keeper_not_listening
):
    # given: a sale on the sandbox network for the sharer's tracking id
    network.cursor = timezone.now() - timedelta(minutes=10)
    network.save()
    external_products_sync(network=network)
    product = ExternalProduct.objects.filter(network=network).order_by("pk").first()
    tracking = tracking_id_for(network=network, member=sharer).value
    paid = sandbox_network.create_order(tracking, product.external_id)

    # when: the sync records it, committed, with no one listening
    run = network_sync(network=Network.objects.get(pk=network.pk), now=timezone.now() + timedelta(seconds=2))

    # then: the network's word is recorded and marked, and not one ledger entry exists
    assert run.status == SyncRun.Status.DONE and run.created == 1
    line = ExternalOrder.objects.get()
    assert line.ledger_marked_at is not None and not hasattr(line, "split")
    assert not Entry.objects.exists()

    # when: the beat's pass runs, twice
    first, second = beat_pass(), beat_pass()

    # then: the first writes the line's split and clears the mark, the second finds nothing to do
    line.refresh_from_db()
    assert (first, second) == (1, 0)
    assert sum(by_level(line).values()) == Decimal(paid["pub_share_pre_fee"])
    assert (line.split.revision, line.ledger_marked_at) == (1, None)
    assert Entry.objects.count() == 3
    assert_ledger_clean()


def test_a_message_lost_to_a_broker_outage_is_picked_up_by_the_beat(network, sharer, monkeypatch, caplog):
    tracking = tracking_id_for(network=network, member=sharer).value

    def broker_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(external_lines_apply_task, "delay", broker_down)
    with caplog.at_level(logging.ERROR, logger="commissions.services.external"):
        external_order_record(network=network, reported=report(tracking), source="sync")

    assert "the beat's pass will write the marked external lines" in caplog.text
    assert not Entry.objects.exists()
    monkeypatch.undo()

    assert beat_pass() == 1

    assert by_level(ExternalOrder.objects.get())[1] == Decimal("9.60")


def test_a_failing_keeper_never_fails_what_the_network_reported(network, sharer, monkeypatch, caplog):
    tracking = tracking_id_for(network=network, member=sharer).value

    def broken():
        raise RuntimeError("the ledger is down")

    monkeypatch.setattr(commissions.receivers, "external_lines_requested", broken)
    with caplog.at_level(logging.ERROR, logger="networks.services"):
        result = external_order_record(network=network, reported=report(tracking), source="sync")

    assert result.created
    assert "they stay marked for the periodic pass" in caplog.text
    assert ExternalOrder.objects.get().ledger_marked_at is not None
    assert not Entry.objects.exists()


def test_applying_a_line_again_writes_nothing_more(network, sharer, keeper_not_listening):
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking), source="sync")
    external_order_record(
        network=network,
        reported=report(tracking, commission="10.00", at=report(tracking).updated_at + timedelta(1)),
        source="sync",
    )
    assert external_lines_apply() == 1
    entries = list(Entry.objects.order_by("pk").values_list("pk", "revision", "level", "kind", "amount"))

    # twice more: through the pass (nothing is marked) and straight at the line, under its lock
    assert external_lines_apply() == 0
    line = external_order_lock(ExternalOrder.objects.get().pk)
    assert external_line_apply(line) == 0

    assert list(Entry.objects.order_by("pk").values_list("pk", "revision", "level", "kind", "amount")) == entries
    assert [revision for _pk, revision, *_rest in entries] == [1, 1, 1]  # one split, of the latest word (10.00)
    assert sum(amount for *_rest, amount in entries) == Decimal("10.00")


def test_a_change_while_the_line_waits_is_written_with_it(network, sharer, keeper_not_listening):
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking), source="sync")
    external_lines_apply()
    invalid = report(tracking, status=OrderStatus.INVALID, at=report(tracking).updated_at + timedelta(hours=1))
    external_order_record(network=network, reported=invalid, source="sync")
    assert ExternalOrder.objects.get().ledger_marked_at is not None

    assert external_lines_apply() == 1

    line = ExternalOrder.objects.get()
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("0.00"), 2: Decimal("0.00")}
    assert (line.split.revision, line.ledger_marked_at) == (2, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_pass_skips_a_line_another_transaction_is_writing_and_writes_it_next_time(network, sharer):
    # given: a marked line, and a transaction (a sync, say) holding its row lock
    assert external_orders_marked.disconnect(dispatch_uid=EXTERNAL_ORDERS_MARKED_UID)
    try:
        tracking = tracking_id_for(network=network, member=sharer).value
        networks_services.external_order_record(network=network, reported=report(tracking), source="sync")
    finally:
        receivers_connect()
    line_id = ExternalOrder.objects.get().pk
    locked, release, claimed = threading.Event(), threading.Event(), []

    def writer():
        try:
            with transaction.atomic():
                external_order_lock(line_id)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    assert locked.wait(timeout=30)
    try:
        # when: the pass runs meanwhile, it neither waits nor writes the line
        claimed.append(external_lines_apply())
    finally:
        release.set()
        thread.join(timeout=30)

    # then: nothing was written; the next run writes it
    assert claimed == [0] and not Entry.objects.exists()
    assert external_lines_apply() == 1
    assert Entry.objects.filter(external_line_id=line_id).count() == 3


def _ledger_writes_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ("commissions.models", "commissions.services")
        ):
            found.append(f"{path.name}:{node.lineno} imports {node.module}")
        if isinstance(node, ast.Name | ast.Attribute) and "CommissionEntry" in (
            getattr(node, "id", "") or getattr(node, "attr", "")
        ):
            found.append(f"{path.name}:{node.lineno} names CommissionEntry")
    return found


def test_no_module_of_the_networks_app_reaches_the_ledger():
    modules = [path for path in NETWORKS_APP.rglob("*.py") if "migrations" not in path.parts]
    assert len(modules) > 10

    assert [write for path in modules for write in _ledger_writes_in(path)] == []
