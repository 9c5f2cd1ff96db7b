"""Share links, their clicks and external listings are the shops app's (issue #20), and nothing else moved with them:
the tables, the content types and permissions, the old admin addresses and the click flush's old task name."""

import importlib

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from config.celery import app as celery_app
from shops.models import ClickFlush, ExternalListing, ShareLink, ShareLinkDailyStat
from shops.services import share_link_create
from shops.tasks import clicks_flush_legacy_task, clicks_flush_task
from staff.models import JobRun
from tests.factories import UserFactory, shop_with_products

pytestmark = pytest.mark.django_db

MOVED = [("referrals", "sharelink"), ("referrals", "sharelinkdailystat"), ("referrals", "clickflush"),
         ("networks", "externallisting")]  # fmt: skip
MIGRATION = importlib.import_module("shops.migrations.0008_share_links_and_external_listings")


def test_the_moved_models_keep_their_tables():
    assert [model._meta.db_table for model in (ShareLink, ShareLinkDailyStat, ClickFlush, ExternalListing)] == [
        "referrals_sharelink",
        "referrals_sharelinkdailystat",
        "referrals_clickflush",
        "networks_externallisting",
    ]
    assert {model._meta.app_label for model in (ShareLink, ShareLinkDailyStat, ClickFlush, ExternalListing)} == {
        "shops"
    }


@pytest.mark.parametrize(
    ("app_label", "above"), [("referrals", {"networks", "shops", "commissions", "payouts"}), ("networks", {"shops"})]
)
def test_the_schema_points_no_way_up_from_referrals_and_networks_to_shops(app_label, above):
    # referrals (the tree) references no model of the apps above it; networks none of shops (the stack:
    # shops > networks > referrals). Share links and external listings were the models that did.
    pointed_at = {
        field.related_model._meta.app_label
        for model in apps.get_app_config(app_label).get_models()
        for field in model._meta.get_fields()
        if field.is_relation and field.concrete and field.related_model is not None
    }
    assert pointed_at & above == set()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/admin/referrals/sharelink/", "/admin/shops/sharelink/"),
        ("/admin/referrals/sharelink/12/change/?is_active=1", "/admin/shops/sharelink/12/change/?is_active=1"),
        ("/admin/referrals/sharelinkdailystat/?day=2026-01-01", "/admin/shops/sharelinkdailystat/?day=2026-01-01"),
        ("/admin/referrals/clickflush/3/history/", "/admin/shops/clickflush/3/history/"),
        ("/admin/networks/externallisting/7/delete/", "/admin/shops/externallisting/7/delete/"),
    ],
)  # fmt: skip
def test_the_old_admin_addresses_redirect_to_the_moved_pages(client, old, new):
    response = client.get(old)

    assert response.status_code == 301
    assert response["Location"] == new


def test_the_admin_pages_of_the_apps_the_models_left_still_open(admin_client):
    assert admin_client.get("/admin/referrals/member/").status_code == 200
    assert admin_client.get("/admin/networks/externalproduct/").status_code == 200
    assert admin_client.get("/admin/referrals/").status_code == 200


def test_the_click_flush_runs_under_its_new_and_its_old_task_name_and_records_its_run(client):
    shop = shop_with_products()
    link = share_link_create(owner=shop.owner)
    browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    schedule = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}

    client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=browser, REMOTE_ADDR="10.0.0.1")
    assert clicks_flush_task.name == "shops.tasks.clicks_flush_task"
    assert clicks_flush_task.apply().get() == 1
    client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=browser, REMOTE_ADDR="10.0.0.2")
    # a message queued under the name the task had before it moved (issue #20) still runs the flush
    assert clicks_flush_legacy_task.name == "referrals.tasks.clicks_flush_task"
    assert celery_app.tasks["referrals.tasks.clicks_flush_task"].apply().get() == 1

    assert "shops.tasks.clicks_flush_task" in schedule
    assert "referrals.tasks.clicks_flush_task" not in schedule
    assert JobRun.objects.get(name="clicks_flush").last_result == "1"
    assert sum(ShareLinkDailyStat.objects.filter(link=link).values_list("clicks", flat=True)) == 2


def _content_types() -> list[tuple[int, str, str]]:
    return sorted(
        ContentType.objects.filter(model__in=[model for _app, model in MOVED]).values_list("pk", "app_label", "model")
    )


def _group_permissions(group: Group) -> list[tuple[int, str, str]]:
    return sorted(group.permissions.values_list("pk", "content_type__app_label", "codename"))


def test_the_data_migration_relabels_the_content_types_in_place_both_ways():
    # given: a group holding permissions on the moved models, and admin history of a link
    support = Group.objects.create(name="link support")
    support.permissions.add(*Permission.objects.filter(codename__in=["view_sharelink", "view_externallisting"]))
    link_type = ContentType.objects.get(app_label="shops", model="sharelink")
    entry = LogEntry.objects.create(
        user=UserFactory(is_staff=True), content_type=link_type, object_id="1", object_repr="/l/x", action_flag=CHANGE
    )
    ids = {model: pk for pk, _app, model in _content_types()}
    permission_ids = {code: pk for pk, _app, code in _group_permissions(support)}

    # when: backwards (the state of main before issue #20), then forwards again
    MIGRATION.content_types_back(apps, None)
    back = (_content_types(), _group_permissions(support))
    MIGRATION.content_types_to_shops(apps, None)

    # then: the same rows, only relabelled
    assert back == (
        sorted((ids[model], app, model) for app, model in MOVED),
        sorted([(permission_ids["view_externallisting"], "networks", "view_externallisting"),
                (permission_ids["view_sharelink"], "referrals", "view_sharelink")]),
    )  # fmt: skip
    assert _content_types() == sorted((ids[model], "shops", model) for _app, model in MOVED)
    assert {code: pk for pk, _app, code in _group_permissions(support)} == permission_ids
    assert LogEntry.objects.get(pk=entry.pk).content_type_id == link_type.pk


def test_the_data_migration_merges_a_content_type_made_for_the_new_label_before_it_ran():
    # given: the old rows (as on main), and a shops.sharelink row that code running ahead of the migration made,
    # with a permission given to a group and a permission of its own
    MIGRATION.content_types_back(apps, None)
    original = ContentType.objects.get(app_label="referrals", model="sharelink")
    view = Permission.objects.get(content_type=original, codename="view_sharelink")
    early = ContentType.objects.create(app_label="shops", model="sharelink")
    early_view = Permission.objects.create(content_type=early, codename="view_sharelink", name="Can view share link")
    extra = Permission.objects.create(content_type=early, codename="export_sharelink", name="Can export share links")
    group = Group.objects.create(name="early")
    group.permissions.add(early_view, extra)

    # when
    MIGRATION.content_types_to_shops(apps, None)

    # then: the original row survives under the new label, with everything the early one had
    assert list(ContentType.objects.filter(model="sharelink").values_list("pk", "app_label")) == [
        (original.pk, "shops")
    ]
    assert not Permission.objects.filter(pk=early_view.pk).exists()
    assert sorted(group.permissions.values_list("pk", flat=True)) == sorted([view.pk, extra.pk])
    assert Permission.objects.get(pk=extra.pk).content_type_id == original.pk
