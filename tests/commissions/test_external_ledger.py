"""External order lines in the ledger (commissions.services.external): split once, changes written as differences,
released, reversed, clawed back."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from commissions.services import commission_release_due
from networks import services as networks_services
from networks.connectors.base import OrderStatus, ReportedOrder
from networks.models import ExternalOrder, ExternalOrderEvent, Network
from networks.services import tracking_id_for
from payouts.selectors import member_balance
from payouts.services import payout_account_save
from staff.ledger_check import ledger_check
from tests.factories import after_commit, make_chain
from tests.payouts.test_money import ensure_plan_in_force, pay_out, staff  # noqa: F401 - staff is a fixture

pytestmark = pytest.mark.django_db

# As production runs them: the ledger is written after the commit (tests.factories.after_commit).
external_order_record = after_commit(networks_services.external_order_record)
external_order_assign = after_commit(networks_services.external_order_assign)

T0 = datetime(2026, 11, 11, 0, 5, tzinfo=UTC)


@pytest.fixture
def network(db):
    ensure_plan_in_force()  # policy: 2 levels, payout ratio ≤ 0.30 of the paid amount; plan 80 % / 20 %
    return Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox"})[0]


@pytest.fixture
def chain(network):
    members = make_chain(3)  # root ← middle ← sharer
    for member in members:
        payout_account_save(
            member=member, method="alipay", holder_name="王芳", alipay_account=f"{member.pk}@example.com"
        )
    return members


def report(tracking: str, *, commission="12.00", status=OrderStatus.PAID, at=T0, order="TB1", paid="100.00", **kw):
    return ReportedOrder(
        external_order_id=order,
        line_id=kw.pop("line_id", "1"),
        tracking_id=tracking,
        product_id="P1",
        title="Green tea 250 g",
        quantity=1,
        paid_amount=Decimal(paid),
        commission=Decimal(commission),
        status=status,
        paid_at=T0,
        updated_at=at,
        settled_at=kw.pop("settled_at", None),
    )


def by_level(line) -> dict[int, Decimal]:
    rows = Entry.objects.filter(external_line=line).values_list("level").annotate(total=Sum("amount"))
    return dict(rows)


def record_settled_after_the_hold(network, tracking: str, settings, commission="20.00"):
    """The network reports the line settled, its hold already passed."""
    settled_at = timezone.now() - timedelta(days=settings.COMMISSION_HOLD_DAYS + 1)
    reported = report(tracking, commission=commission, status=OrderStatus.SETTLED, at=settled_at, settled_at=settled_at)
    external_order_record(network=network, reported=reported, source="sync")


def assert_ledger_clean():
    problems = [f"{r.name}: {v}" for r in ledger_check() for v in r.violations]
    assert not problems, problems


def test_a_matched_line_is_split_once_like_our_own_sales(network, chain):
    root, middle, sharer = chain
    tracking = tracking_id_for(network=network, member=sharer).value

    first = external_order_record(network=network, reported=report(tracking), source="sync")
    again = external_order_record(network=network, reported=report(tracking), source="sync")

    line = ExternalOrder.objects.get()
    assert (first.created, again.created, again.changed) == (True, False, False)
    assert line.member == sharer and line.split.revision == 1
    # Pool 12.00: sharer 80 % = 9.60, middle 20 % = 2.40 … capped at 30 % of the 100.00 paid: 30.00, not binding.
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("9.60"), 2: Decimal("2.40")}
    assert Entry.objects.filter(external_line=line).count() == 3
    assert ExternalOrderEvent.objects.filter(order=line).count() == 1
    assert member_balance(sharer).pending == Decimal("9.60")
    assert_ledger_clean()


def test_the_payout_ratio_cap_binds_external_lines_too(network, chain):
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking, commission="50.00", paid="100.00"), source="s")

    line = ExternalOrder.objects.get()
    levels = by_level(line)
    assert levels[1] + levels[2] == Decimal("30.00")  # 30 % of the paid amount, whatever the network pays us
    assert sum(levels.values()) == Decimal("50.00")


def test_a_restated_commission_is_split_anew_not_the_old_split_scaled_down(network, chain):
    # 50.00 on 100.00 paid: the payout cap binds (24.00 / 6.00). The network restates it as 20.00: the cap no longer
    # binds, so the ledger holds 16.00 / 4.00 (the old split scaled by 20 / 50 would be 9.60 / 2.40). This is why an
    # external line is not reversed by a refund's proportion (commissions.services.external).
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking, commission="50.00"), source="sync")
    restated = report(tracking, commission="20.00", at=T0 + timedelta(hours=1))

    external_order_record(network=network, reported=restated, source="sync")

    line = ExternalOrder.objects.get()
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("16.00"), 2: Decimal("4.00")}
    assert_ledger_clean()


def test_a_lower_actual_commission_at_settlement_is_a_negative_adjustment_at_every_level(network, chain):
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking, commission="12.00"), source="sync")
    settled = report(
        tracking,
        commission="10.00",
        status=OrderStatus.SETTLED,
        at=T0 + timedelta(days=8),
        settled_at=T0 + timedelta(days=8),
    )
    result = external_order_record(network=network, reported=settled, source="sync")

    line = ExternalOrder.objects.get()
    assert result.changed and line.split.revision == 2
    adjustments = dict(Entry.objects.filter(external_line=line, revision=2).values_list("level", "amount"))
    assert adjustments == {1: Decimal("-1.60"), 2: Decimal("-0.40")}  # the platform's 0.00 does not move
    assert set(Entry.objects.filter(external_line=line, revision=2).values_list("kind", flat=True)) == {"adjustment"}
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("8.00"), 2: Decimal("2.00")}
    assert Entry.objects.filter(external_line=line, revision=1).count() == 3  # nothing edited in place
    assert_ledger_clean()


def test_settled_lines_are_released_after_the_hold_and_can_be_paid_out(network, chain, settings):
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    record_settled_after_the_hold(network, tracking, settings)
    assert member_balance(sharer).withdrawable == Decimal("0.00")

    commission_release_due()

    assert member_balance(sharer).withdrawable == Decimal("16.00")
    withdrawal = pay_out(sharer, Decimal("16.00"))
    assert withdrawal.status == "paid"
    assert_ledger_clean()


def test_a_line_not_yet_settled_is_not_released(network, chain, settings):
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking, status=OrderStatus.CONFIRMED), source="sync")
    commission_release_due(now=timezone.now() + timedelta(days=365))
    assert member_balance(sharer).withdrawable == Decimal("0.00")


def test_invalid_before_release_reverses_everything(network, chain):
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    external_order_record(network=network, reported=report(tracking), source="sync")
    external_order_record(
        network=network, reported=report(tracking, status=OrderStatus.INVALID, at=T0 + timedelta(hours=1)), source="s"
    )

    line = ExternalOrder.objects.get()
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("0.00"), 2: Decimal("0.00")}
    assert set(Entry.objects.filter(external_line=line, revision=2).values_list("kind", flat=True)) == {"reversal"}
    assert set(Entry.objects.filter(external_line=line).values_list("status", flat=True)) == {"reversed"}
    assert member_balance(sharer).pending == Decimal("0.00")
    assert_ledger_clean()


def test_invalid_after_release_and_payout_is_clawed_back(network, chain, settings, staff):  # noqa: F811
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    record_settled_after_the_hold(network, tracking, settings)
    commission_release_due()
    pay_out(sharer, Decimal("16.00"))

    external_order_record(
        network=network,
        reported=report(tracking, commission="20.00", status=OrderStatus.INVALID, at=timezone.now()),
        source="sync",
    )

    line = ExternalOrder.objects.get()
    clawbacks = dict(Entry.objects.filter(external_line=line, kind="clawback").values_list("level", "amount"))
    assert clawbacks == {1: Decimal("-16.00"), 2: Decimal("-4.00")}
    assert member_balance(sharer).withdrawable == Decimal("-16.00")  # netted against later commission
    assert_ledger_clean()


def test_invalid_after_release_reverses_what_waits_and_claws_back_only_what_was_released(network, chain, settings):
    # given: a line settled and released (16.00 / 4.00), then 5.00 more reported with a new settlement, which waits
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    record_settled_after_the_hold(network, tracking, settings)
    commission_release_due()
    resettled = timezone.now() - timedelta(hours=2)
    external_order_record(
        network=network,
        reported=report(tracking, commission="25.00", status=OrderStatus.SETTLED, at=resettled, settled_at=resettled),
        source="sync",
    )
    assert (member_balance(sharer).withdrawable, member_balance(sharer).pending) == (Decimal("16.00"), Decimal("4.00"))

    # when: the network reports it invalid
    external_order_record(
        network=network,
        reported=report(
            tracking, commission="25.00", status=OrderStatus.INVALID, at=timezone.now() - timedelta(hours=1)
        ),
        source="sync",
    )
    commission_release_due(now=timezone.now() + timedelta(days=365))

    # then: the 4.00 on hold is reversed and leaves the balances, only the 16.00 released is clawed back. Before
    # issue #20 all 20.00 was clawed back and the 4.00 stayed pending for ever: -4.00 withdrawable, 4.00 on hold.
    line = ExternalOrder.objects.get()
    taken_back = Entry.objects.filter(external_line=line, revision=3, beneficiary=sharer)
    assert sorted(taken_back.values_list("kind", "amount", "status")) == [
        ("clawback", Decimal("-16.00"), "available"),
        ("reversal", Decimal("-4.00"), "reversed"),
    ]
    balance = member_balance(sharer)
    assert (balance.withdrawable, balance.pending, balance.clawed_back) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("16.00"),
    )
    assert by_level(line) == {0: Decimal("0.00"), 1: Decimal("0.00"), 2: Decimal("0.00")}
    assert_ledger_clean()


def test_an_unknown_tracking_id_is_kept_for_staff_and_split_once_assigned(network, chain, staff):  # noqa: F811
    sharer = chain[-1]
    external_order_record(network=network, reported=report("nobody-knows-me"), source="sync")

    line = ExternalOrder.objects.get()
    assert line.member is None and not Entry.objects.filter(external_line=line).exists()

    external_order_assign(line=line, member=sharer, actor=staff)

    assert by_level(line)[1] == Decimal("9.60")
    assert member_balance(sharer).pending == Decimal("9.60")


def test_an_older_report_than_the_one_applied_changes_nothing(network, chain):
    sharer = chain[-1]
    tracking = tracking_id_for(network=network, member=sharer).value
    later = T0 + timedelta(hours=2)
    external_order_record(network=network, reported=report(tracking, commission="8.00", at=later), source="sync")
    stale = external_order_record(network=network, reported=report(tracking, commission="12.00", at=T0), source="s")

    assert stale.stale
    assert ExternalOrder.objects.get().commission == Decimal("8.00")
    assert ExternalOrder.objects.get().split.revision == 1


def test_tracking_ids_are_one_per_member_and_network(network, chain):
    first = tracking_id_for(network=network, member=chain[0])
    assert tracking_id_for(network=network, member=chain[0]) == first
    assert tracking_id_for(network=network, member=chain[1]).value != first.value
