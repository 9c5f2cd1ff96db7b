"""Staff pages for external networks: the lists open without N+1, report files are imported whole or refused with
their row, unmatched orders are attributed to a member, "sync now" syncs, and each group sees only its part."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from networks.connectors.base import OrderStatus, ReportedOrder
from networks.models import ExternalOrder, Network, ReportImport, SyncRun
from networks.services import external_order_record, external_products_sync
from staff.groups import FINANCE, SUPPORT
from tests.factories import MemberFactory, UserFactory
from tests.networks.test_imports import _taobao_file, _taobao_row
from tests.payouts.test_money import ensure_plan_in_force

pytestmark = pytest.mark.django_db


@pytest.fixture
def networks(db):
    ensure_plan_in_force()
    for code, name in (("sandbox", "Sandbox network"), ("taobao", "淘宝联盟"), ("jd", "京东联盟")):
        Network.objects.get_or_create(code=code, defaults={"name": name})
    return {network.code: network for network in Network.objects.all()}


def staff_in(group_name):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def unmatched_line(network, number="T1") -> ExternalOrder:
    at = timezone.now() - timedelta(hours=1)
    external_order_record(
        network=network,
        reported=ReportedOrder(
            external_order_id=number, line_id="1", tracking_id="nobody", product_id="P", title="Tea", quantity=1,
            paid_amount=Decimal("100.00"), commission=Decimal("10.00"), status=OrderStatus.PAID, paid_at=at,
            updated_at=at,
        ),
        source="sync",
    )  # fmt: skip
    return ExternalOrder.objects.get(external_order_id=number)


def test_the_external_order_list_costs_the_same_queries_for_2_and_6_rows(client, staff_user, networks):
    client.force_login(staff_user)
    url = reverse("admin:networks_externalorder_changelist")
    counts = []
    for total in (2, 6):
        while ExternalOrder.objects.count() < total:
            unmatched_line(networks["taobao"], f"T{ExternalOrder.objects.count()}")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize(
    "name",
    [
        "networks_network",
        "networks_externalorder",
        "networks_externalproduct",
        "shops_externallisting",  # a shop's listing of an external product: the shops app's since issue #20
        "networks_trackingid",
        "networks_syncrun",
        "networks_reportimport",
    ],
)
def test_every_networks_list_opens(client, staff_user, networks, name):
    unmatched_line(networks["taobao"])
    client.force_login(staff_user)
    assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_finance_imports_a_report_file_and_the_same_file_again_is_refused(client, networks):
    client.force_login(staff_in(FINANCE))
    content = _taobao_file([_taobao_row(), _taobao_row(**{"淘宝子订单编号": "9"})])
    url = reverse("admin:networks_reportimport_upload")

    for _ in range(2):
        upload = SimpleUploadedFile("2026-01.csv", content, content_type="text/csv")
        response = client.post(url, {"network": networks["taobao"].pk, "file": upload}, follow=True)
        assert response.status_code == 200

    first, second = ReportImport.objects.order_by("pk")
    assert (first.status, first.created, second.status, second.created, second.changed) == ("done", 2, "refused", 0, 0)
    assert ExternalOrder.objects.count() == 2
    assert "Nothing imported: This file was imported already" in response.content.decode()


def test_a_malformed_file_is_refused_with_its_row_and_nothing_is_imported(client, networks):
    client.force_login(staff_in(FINANCE))
    content = _taobao_file([_taobao_row(), _taobao_row(**{"淘宝子订单编号": "9", "订单状态": "已发货"})])
    upload = SimpleUploadedFile("bad.csv", content, content_type="text/csv")

    response = client.post(
        reverse("admin:networks_reportimport_upload"), {"network": networks["taobao"].pk, "file": upload}, follow=True
    )

    assert "Nothing imported: row 3" in response.content.decode()
    assert ReportImport.objects.get().status == "refused"
    assert not ExternalOrder.objects.exists()


def test_an_upload_that_is_not_a_report_file_is_a_form_error(client, networks):
    client.force_login(staff_in(FINANCE))
    upload = SimpleUploadedFile("photo.png", b"\x89PNG....", content_type="image/png")

    response = client.post(
        reverse("admin:networks_reportimport_upload"), {"network": networks["taobao"].pk, "file": upload}
    )

    assert response.status_code == 400 and "Upload a .csv or .xlsx file." in response.content.decode()
    assert not ReportImport.objects.exists()


def test_finance_attributes_an_unmatched_order_and_it_is_split(client, networks, django_capture_on_commit_callbacks):
    client.force_login(staff_in(FINANCE))
    line = unmatched_line(networks["taobao"])
    member = MemberFactory()
    url = reverse("admin:networks_externalorder_changelist")
    data = {"action": "assign_member", ACTION_CHECKBOX_NAME: [line.pk]}

    bad = client.post(url, {**data, "apply": "1", "invite_code": "NOSUCHCODE"})
    assert bad.status_code == 400 and "No member has this invite code." in bad.content.decode()
    assert ExternalOrder.objects.get(pk=line.pk).member is None

    with django_capture_on_commit_callbacks(execute=True):  # the ledger is written after the commit
        client.post(url, {**data, "apply": "1", "invite_code": member.invite_code.lower()})
    line.refresh_from_db()
    assert line.member == member
    assert Entry.objects.filter(external_line=line, beneficiary=member).exists()


def test_support_may_look_but_not_import_or_attribute(client, networks):
    client.force_login(staff_in(SUPPORT))
    line = unmatched_line(networks["taobao"])
    member = MemberFactory()

    assert client.get(reverse("admin:networks_externalorder_changelist")).status_code == 200
    assert client.get(reverse("admin:networks_reportimport_upload")).status_code == 403
    client.post(
        reverse("admin:networks_externalorder_changelist"),
        {"action": "assign_member", ACTION_CHECKBOX_NAME: [line.pk], "apply": "1", "invite_code": member.invite_code},
    )
    assert ExternalOrder.objects.get(pk=line.pk).member is None


def test_sync_now_syncs_the_sandbox_and_the_page_never_shows_the_secret(client, networks, sandbox_network):
    client.force_login(staff_in(FINANCE))
    network = networks["sandbox"]
    network.cursor = timezone.now() - timedelta(minutes=10)
    network.save()
    external_products_sync(network=network)
    product = sandbox_network.state.products[0]
    sandbox_network.create_order("m00nobody000", product.item_id, at=timezone.now() - timedelta(seconds=5))

    client.post(
        reverse("admin:networks_network_changelist"), {"action": "sync_now", ACTION_CHECKBOX_NAME: [network.pk]}
    )
    page = client.get(reverse("admin:networks_network_change", args=[network.pk])).content.decode()

    assert SyncRun.objects.get().status == "done"
    assert ExternalOrder.objects.filter(network=network).count() == 1
    assert "configured in the environment" in page
    assert sandbox_network.app_secret not in page


def test_finance_enters_a_members_taobao_promotion_position_which_their_links_then_use(client, networks):
    from networks.models import TrackingId
    from networks.services import NetworkError, tracking_id_for

    member = MemberFactory()
    with pytest.raises(NetworkError, match="promotion position"):
        tracking_id_for(network=networks["taobao"], member=member)  # 淘宝联盟's ids come from its console
    client.force_login(staff_in(FINANCE))

    response = client.post(
        reverse("admin:networks_trackingid_add"),
        {"network": networks["taobao"].pk, "member": member.pk, "value": "110732600234"},
    )

    assert response.status_code == 302
    assert tracking_id_for(network=networks["taobao"], member=member).value == "110732600234"
    assert TrackingId.objects.count() == 1
    change = reverse("admin:networks_trackingid_change", args=[TrackingId.objects.get().pk])
    client.post(change, {"network": networks["taobao"].pk, "member": member.pk, "value": "999"})
    assert TrackingId.objects.get().value == "110732600234"  # never edited once entered
