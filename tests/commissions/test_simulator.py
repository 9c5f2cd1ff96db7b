"""The commission-plan simulator's engine (commissions/simulation.py); its staff pages are tested in
tests/staff/test_simulator_pages.py.

Fixture: a three-level plan (50/30/20 %) under a three-level policy, the chain Grace → Paul → Sara, Sara's shop
selling tea (19.90 at 12.5 %) and a gadget (50.00 at 50 %: its line is capped by the 30 % payout ratio), and four
paid orders, one of them a self-purchase. All made through the real services; the split runs on commit.

    order   line        net     pool    Sara    Paul    Grace   platform  cap
    A       3 × tea     59.70    7.46    3.73    2.23    1.49    0.01
    B       1 × tea     19.90    2.49    1.24    0.74    0.49    0.02
    B       1 × gadget  50.00   25.00    7.50    4.50    3.00   10.00     max_payout_ratio (12.50+7.50+5.00 → 15.00)
    C       2 × tea     39.80    4.98    2.49    1.49    0.99    0.01
    D       1 × tea     19.90    2.49    —       —       —       2.49      self-purchase
    total              189.30   42.42   14.96    8.96    5.97   12.53
"""

from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from commissions import simulation as simulation_module
from commissions.models import CommissionEntry, PlanSimulation
from commissions.services import CommissionError, plan_activate, plan_create, policy_publish
from commissions.simulation import plan_simulation_create, plan_simulation_run
from shops.services import BuyerDetails, order_place
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
Status = PlanSimulation.Status
ACTIVE_RATES = (D("0.5000"), D("0.3000"), D("0.2000"))


@pytest.fixture
def world(staff_user, django_capture_on_commit_callbacks):
    policy_publish(actor=staff_user, note="three levels", max_levels=3)
    plan = plan_create(actor=staff_user, name="50/30/20", rates=(D("0.5000"), D("0.3000"), D("0.2000")))
    plan_activate(plan=plan, actor=staff_user)
    grace, paul, sara = make_chain(3)
    tea = ProductFactory(title="Tea", price=D("19.90"), commission_rate=D("0.1250"))
    gadget = ProductFactory(title="Gadget", price=D("50.00"), commission_rate=D("0.5000"))
    shop = shop_with_products(tea, gadget, owner=sara)
    orders = [
        place_order(shop, {tea: 3}),
        place_order(shop, {tea: 1, gadget: 1}),
        place_order(shop, {tea: 2}),
        order_place(
            shop=shop,
            items={tea.pk: 1},
            buyer=BuyerDetails(name="Sara", phone="", email=sara.user.email, address="1 Home Road"),
        ),
    ]
    for order in orders:
        with django_capture_on_commit_callbacks(execute=True):
            pay_order(order)
    assert orders[3].is_self_purchase
    assert CommissionEntry.objects.filter(capped_by="max_payout_ratio", level__gte=1).count() == 3
    return {"plan": plan, "grace": grace, "paul": paul, "sara": sara, "tea": tea, "shop": shop}


def simulate(capture, actor, *, rates=ACTIVE_RATES, overrides=None, **kwargs):
    """Create a simulation of today's payments and run it (the task runs on commit, eagerly)."""
    today = timezone.localdate()
    with capture(execute=True):
        simulation = plan_simulation_create(
            actor=actor,
            name=kwargs.pop("name", "test"),
            rates=rates,
            policy_overrides=overrides or {},
            date_from=kwargs.pop("date_from", today),
            date_to=kwargs.pop("date_to", today),
            **kwargs,
        )
    simulation.refresh_from_db()
    return simulation


def _ledger_per_level() -> dict[str, str]:
    totals: dict[str, Decimal] = {}
    for level, amount in CommissionEntry.objects.filter(kind="commission", level__gte=1).values_list("level", "amount"):
        totals[str(level)] = totals.get(str(level), D("0.00")) + amount
    return {level: str(amount) for level, amount in sorted(totals.items())}


def _table_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for label in ("commissions", "shops", "payouts", "referrals", "accounts")
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy
    }


# --- (1) the draft equal to the plan in force reproduces the real split exactly ------------------------------------


def test_a_draft_equal_to_the_active_plan_reproduces_the_real_split_exactly(
    world, staff_user, django_capture_on_commit_callbacks
):
    # when
    simulation = simulate(django_capture_on_commit_callbacks, staff_user, draft_plan=world["plan"], rates=())

    # then: the same rates were used, and both sides agree to the cent on every total
    assert simulation.status == Status.DONE
    assert simulation.rates == (D("0.5000"), D("0.3000"), D("0.2000"))
    result = simulation.result
    assert result["lines"] == 5
    assert (simulation.lines_done, simulation.lines_total) == (5, 5)
    assert result["net_sales"] == "189.30"
    assert result["simulated"] == result["actual"]
    assert result["actual"]["levels"] == _ledger_per_level() == {"1": "14.96", "2": "8.96", "3": "5.97"}
    assert result["actual"]["member_total"] == "29.89"
    assert result["actual"]["platform"] == "12.53"
    assert result["actual"]["ratio"] == "0.1579"  # 29.89 / 189.30
    assert result["actual"]["capped"]["max_payout_ratio"] == {
        "lines": 1,
        "entries": 3,
        "amount": "15.00",
        "withheld": "10.00",
    }
    assert result["actual"]["capped"]["max_total_rate"] == {
        "lines": 0,
        "entries": 0,
        "amount": "0.00",
        "withheld": "0.00",
    }
    # nobody gains or loses, and the draft is legal
    assert result["top_gainers"] == result["top_losers"] == []
    assert result["members"] == 3
    assert result["violations"] == result["historic_violations"] == []
    assert result["unmatched"] == {"no_plan_or_policy": 0, "no_ledger_rows": 0}


def test_member_totals_equal_the_ledger_when_the_draft_is_the_active_plan(
    world, staff_user, django_capture_on_commit_callbacks, monkeypatch
):
    # given: capture the per-member totals the run computes
    seen = {}
    original = simulation_module._most_affected

    def spy(members):
        seen.update(members)
        return original(members)

    monkeypatch.setattr(simulation_module, "_most_affected", spy)

    # when
    simulate(django_capture_on_commit_callbacks, staff_user)

    # then: [actual, simulated] per member, both equal to the member's commission in the ledger
    assert seen == {
        world["sara"].pk: [D("14.96"), D("14.96")],
        world["paul"].pk: [D("8.96"), D("8.96")],
        world["grace"].pk: [D("5.97"), D("5.97")],
    }


# --- (2) it writes nothing but its own row -------------------------------------------------------------------------


def test_the_simulator_writes_nothing_but_its_own_row(world, staff_user, django_capture_on_commit_callbacks):
    # given
    before = _table_counts()
    ledger = list(CommissionEntry.objects.order_by("pk").values())

    # when: a draft very different from the plan in force
    simulation = simulate(
        django_capture_on_commit_callbacks, staff_user, rates=(D("1.0000"),), overrides={"max_payout_ratio": "0.2000"}
    )

    # then
    assert simulation.status == Status.DONE
    after = _table_counts()
    assert after.pop("commissions.PlanSimulation") == before.pop("commissions.PlanSimulation") + 1
    assert after == before
    assert list(CommissionEntry.objects.order_by("pk").values()) == ledger


def test_a_second_run_of_a_done_simulation_changes_nothing(world, staff_user, django_capture_on_commit_callbacks):
    simulation = simulate(django_capture_on_commit_callbacks, staff_user)
    snapshot = PlanSimulation.objects.filter(pk=simulation.pk).values().get()

    plan_simulation_run(simulation_id=simulation.pk)

    assert PlanSimulation.objects.filter(pk=simulation.pk).values().get() == snapshot


def test_a_run_that_fails_is_marked_failed_with_the_error(
    world, staff_user, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(simulation_module, "split_line", broken)

    simulation = simulate(django_capture_on_commit_callbacks, staff_user)

    assert simulation.status == Status.FAILED
    assert "boom" in simulation.error
    assert simulation.finished_at is not None
    assert simulation.result is None


# --- (3) a different draft gives the hand-computed totals ----------------------------------------------------------


def test_a_sharer_only_draft_gives_the_hand_computed_totals(world, staff_user, django_capture_on_commit_callbacks):
    sara, paul, grace = world["sara"], world["paul"], world["grace"]

    # when: 60 % of the pool to the sharer, nobody else
    simulation = simulate(django_capture_on_commit_callbacks, staff_user, rates=(D("0.6000"),))

    # then: Sara 4.47 + 1.49 + 15.00 (= 30 % of 50.00, exactly the cap: not bound) + 2.98; nothing on D
    result = simulation.result
    assert result["simulated"]["levels"] == {"1": "23.94"}
    assert result["simulated"]["member_total"] == "23.94"
    assert result["simulated"]["platform"] == "18.48"  # 42.42 - 23.94
    assert result["simulated"]["ratio"] == "0.1265"  # 23.94 / 189.30
    assert result["simulated"]["capped"]["max_payout_ratio"]["lines"] == 0
    assert result["actual"]["member_total"] == "29.89"
    assert result["top_gainers"] == [[sara.pk, str(sara), "14.96", "23.94", "8.98"]]
    assert result["top_losers"] == [
        [paul.pk, str(paul), "8.96", "0.00", "-8.96"],
        [grace.pk, str(grace), "5.97", "0.00", "-5.97"],
    ]
    assert result["violations"] == []


def test_a_policy_override_is_applied_to_the_draft(world, staff_user, django_capture_on_commit_callbacks):
    # when: the same plan, but self-purchase earns: order D (pool 2.49) is split 1.24 / 0.74 / 0.49
    simulation = simulate(django_capture_on_commit_callbacks, staff_user, overrides={"self_purchase_earns": True})

    # then
    assert simulation.result["simulated"]["levels"] == {"1": "16.20", "2": "9.70", "3": "6.46"}
    assert simulation.result["simulated"]["platform"] == "10.06"  # 12.53 - 2.49 + 0.02


# --- (4) a draft that breaks the policy is reported, and still simulated with the caps binding ---------------------


def test_a_draft_that_breaks_the_policy_is_reported_and_simulated_with_the_caps_binding(
    world, staff_user, django_capture_on_commit_callbacks
):
    # when: the rates add up to 110 % of the pool (the policy allows 100 %)
    simulation = simulate(django_capture_on_commit_callbacks, staff_user, rates=(D("0.6000"), D("0.3000"), D("0.2000")))

    # then: it ran, and says why the plan could not be saved, now and under the policy of the period
    assert simulation.status == Status.DONE
    result = simulation.result
    assert len(result["violations"]) == 1
    assert "1.1000" in result["violations"][0]
    assert "maximum total rate" in result["violations"][0]
    assert [refusal["policy"] for refusal in result["historic_violations"]] == ["policy v2"]
    # the rate cap binds on the three tea lines that earn, the payout ratio (tighter) on the gadget line
    capped = result["simulated"]["capped"]
    assert (capped["max_total_rate"]["lines"], capped["max_total_rate"]["entries"]) == (3, 9)
    assert (capped["max_payout_ratio"]["lines"], capped["max_payout_ratio"]["entries"]) == (1, 3)
    # level 1: A 7.46 × 0.6/1.1 = 4.06, B tea 2.49 × 0.6/1.1 = 1.35, C 4.98 × 0.6/1.1 = 2.71;
    # the gadget line is scaled to the payout limit: 25.00 × rate × 15.00/27.50 = 8.18, 4.09, 2.72
    assert result["simulated"]["levels"]["1"] == str(D("4.06") + D("1.35") + D("8.18") + D("2.71"))
    # never over a cap: the members' share of the gadget line is at most 15.00
    assert D(capped["max_payout_ratio"]["amount"]) == D("14.99")


def test_a_draft_paying_more_levels_than_the_policy_allows_pays_only_the_allowed_levels(
    world, staff_user, django_capture_on_commit_callbacks
):
    simulation = simulate(django_capture_on_commit_callbacks, staff_user, overrides={"max_levels": 1})

    result = simulation.result
    assert "allows at most 1" in " ".join(result["violations"])
    # only Sara is paid: her 50 % of each pool, and the gadget line (12.50 alone) is no longer capped
    assert result["simulated"]["levels"] == {"1": "19.96"}  # 3.73 + 1.24 + 12.50 + 2.49
    assert result["simulated"]["capped"]["max_payout_ratio"]["lines"] == 0


# --- (5) bad input is refused and nothing is created ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to"),
        ({"date_from": "not a date"}, "date_from"),
        ({"rates": ()}, "level1_rate"),
        ({"rates": (D("0.1"), D("0.1"), D("0.1"), D("0.1"))}, "__all__"),
        ({"rates": (D("1.5"),)}, "level1_rate"),
        ({"rates": (D("0.12345"),)}, "level1_rate"),
        ({"rates": (D("0.5"), None, D("0.1"))}, "level2_rate"),
        ({"rates": (0.5,)}, "level1_rate"),
        ({"overrides": {"max_levels": 4}}, "max_levels"),
        ({"overrides": {"max_levels": 0}}, "max_levels"),
        ({"overrides": {"max_payout_ratio": "2"}}, "max_payout_ratio"),
        ({"overrides": {"ineligible_share": "burn"}}, "ineligible_share"),
        ({"overrides": {"bonus_per_signup": "1"}}, "__all__"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_created(staff_user, kwargs, field, django_capture_on_commit_callbacks):
    values = {
        "rates": (D("0.5000"),),
        "overrides": {},
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
        **kwargs,
    }
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommissionError) as refused:
        plan_simulation_create(
            actor=staff_user,
            name="bad",
            rates=values["rates"],
            policy_overrides=values["overrides"],
            date_from=values["date_from"],
            date_to=values["date_to"],
        )

    assert field in refused.value.error_dict
    assert not PlanSimulation.objects.exists()


def test_rates_that_differ_from_the_chosen_plan_are_refused(world, staff_user):
    with pytest.raises(CommissionError) as refused:
        plan_simulation_create(
            actor=staff_user,
            name="",
            rates=(D("0.9000"),),
            policy_overrides={},
            date_from="2026-03-01",
            date_to="2026-03-31",
            draft_plan=world["plan"],
        )

    assert "draft_plan" in refused.value.error_dict
    assert not PlanSimulation.objects.exists()
