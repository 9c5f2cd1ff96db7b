"""The plan simulator's staff pages (staff/simulator.py, and its admin list in staff/admin.py): the form, the list,
the results, and who may open them. The engine is tested in tests/commissions/test_simulator.py, whose fixture
(`world`) and helper (`simulate`) these tests reuse."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from commissions.models import PlanSimulation
from tests.commissions.test_simulator import simulate, world  # noqa: F401 - the fixture
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

D = Decimal
Status = PlanSimulation.Status
LIST = reverse("staff:simulation_list")
CREATE = reverse("staff:simulation_create")


def _detail(simulation) -> str:
    return reverse("staff:simulation_detail", args=[simulation.pk])


def _form(**overrides) -> dict:
    today = timezone.localdate().isoformat()
    return {
        "name": "Summer",
        "draft_plan": "",
        "level1_rate": "0.6000",
        "level2_rate": "",
        "level3_rate": "",
        "max_levels": "",
        "max_total_rate": "",
        "max_payout_ratio": "",
        "self_purchase_earns": "",
        "ineligible_share": "",
        "date_from": today,
        "date_to": today,
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"max_levels": "4"}, "max_levels"),
        ({"level1_rate": "1.5"}, "level1_rate"),
        ({"level1_rate": "abc"}, "level1_rate"),
        ({"level1_rate": ""}, "level1_rate"),
        ({"level2_rate": "", "level3_rate": "0.1000"}, "level2_rate"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"draft_plan": "999999"}, "draft_plan"),
        ({"self_purchase_earns": "maybe"}, "self_purchase_earns"),
    ],
)
def test_the_form_shows_errors_for_bad_input_and_creates_nothing(admin_client, overrides, field):
    response = admin_client.post(CREATE, _form(**overrides))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not PlanSimulation.objects.exists()


# --- (6) pages -----------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _staff_with(*codenames):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="commissions", codename__in=codenames))
    return user


def test_the_pages_need_the_permissions(client, staff_user):
    simulation = PlanSimulation.objects.create(level1_rate=D("0.5"), date_from="2026-03-01", date_to="2026-03-31")
    # a staff member without the permissions: 403 everywhere
    client.force_login(_staff_with())
    for url in (LIST, CREATE, _detail(simulation)):
        assert client.get(url).status_code == 403
    assert client.post(CREATE, _form()).status_code == 403
    # view only: the list and the results, not the form
    client.force_login(_staff_with("view_plansimulation"))
    assert client.get(LIST).status_code == 200
    assert client.get(_detail(simulation)).status_code == 200
    assert client.get(CREATE).status_code == 403
    # not staff at all: the admin's login page
    client.force_login(UserFactory())
    assert client.get(LIST).status_code == 302


def test_the_form_creates_and_runs_a_simulation(
    world,  # noqa: F811 - the imported fixture
    admin_client,
    staff_user,
    django_capture_on_commit_callbacks,
):
    form = admin_client.get(CREATE).context["form"]
    assert (form.initial["date_to"] - form.initial["date_from"]).days == 29

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CREATE, _form(draft_plan=str(world["plan"].pk), level1_rate=""))

    simulation = PlanSimulation.objects.get()
    assert response.status_code == 302
    assert response.url == _detail(simulation)
    assert simulation.status == Status.DONE
    assert simulation.created_by == staff_user
    assert simulation.draft_plan == world["plan"]
    assert simulation.result["simulated"] == simulation.result["actual"]


def test_the_detail_page_shows_progress_while_running(admin_client):
    simulation = PlanSimulation.objects.create(
        name="Big", level1_rate=D("0.5"), date_from="2026-03-01", date_to="2026-03-31", status=Status.RUNNING,
        lines_total=200, lines_done=50,
    )  # fmt: skip

    response = admin_client.get(_detail(simulation))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<progress value="50" max="200">' in html
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "<script>" not in html and "style=" not in html.split("<body")[1]
    assert 'id="comparison"' not in html


def test_the_detail_page_shows_the_results_when_done(
    world,  # noqa: F811 - the imported fixture
    admin_client,
    staff_user,
    django_capture_on_commit_callbacks,
):
    simulation = simulate(django_capture_on_commit_callbacks, staff_user, rates=(D("0.6000"), D("0.3000"), D("0.2000")))

    response = admin_client.get(_detail(simulation))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'http-equiv="refresh"' not in html
    assert 'id="comparison"' in html
    assert "This draft breaks the policy" in html
    assert "maximum total rate" in html
    assert "¥29.89" in html  # the members' total actually paid
    assert str(world["sara"]) in html  # among the most affected
    assert "Refunds, reversals and clawbacks are left out" in html
    report = response.context["report"]
    assert report["member_total"]["actual"] == D("29.89")
    assert [row["level"] for row in report["levels"]] == [1, 2, 3]


def test_the_list_page_lists_simulations_in_few_queries(admin_client, staff_user, django_assert_max_num_queries):
    for number in range(5):
        PlanSimulation.objects.create(
            name=f"s{number}", level1_rate=D("0.5"), date_from="2026-03-01", date_to="2026-03-31", created_by=staff_user
        )

    with django_assert_max_num_queries(8):
        response = admin_client.get(LIST)

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 5


def test_the_admin_list_is_read_only_and_links_to_the_pages(admin_client, staff_user):
    simulation = PlanSimulation.objects.create(level1_rate=D("0.5"), date_from="2026-03-01", date_to="2026-03-31")

    changelist = admin_client.get(reverse("admin:commissions_plansimulation_changelist"))
    add = admin_client.get(reverse("admin:commissions_plansimulation_add"))
    change = admin_client.get(reverse("admin:commissions_plansimulation_change", args=[simulation.pk]))

    assert changelist.status_code == 200
    assert _detail(simulation) in changelist.content.decode()
    assert (add.status_code, add.url) == (302, CREATE)
    assert (change.status_code, change.url) == (302, _detail(simulation))
    assert admin_client.post(reverse("admin:commissions_plansimulation_delete", args=[simulation.pk])).status_code in (
        302,
        403,
    )
    assert PlanSimulation.objects.filter(pk=simulation.pk).exists()
