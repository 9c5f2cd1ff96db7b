"""The public commission rules page (issue #25): the rules in force in plain words with a worked example from the
split's own calculation, the history of every version with its dates, the announced changes, the notice period
and the members' notification of a change."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import PROTECT
from django.urls import reverse
from django.utils import formats, timezone, translation

from accounts.approvals import approval_decide
from accounts.models import ApprovalRequest
from commissions.approvals import plan_activate_request, policy_publish_request
from commissions.calculations import ChainMember, line_pool, split_line
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy, ExternalSplit, OrderSplit
from commissions.rules import rules_page, rules_timeline
from commissions.services import CommissionError, plan_activate, plan_create, policy_publish
from commissions.services.plans import policy_options_sync
from members.notifications.messages import render
from members.notifications.models import Event, Notification, NotificationEvent
from members.notifications.services import notifications_fan_out, notifications_sweep, rules_change_collect
from referrals.models import Member
from shops.models import AttributionOptions
from shops.selectors import attribution_options
from staff.groups import COMPLIANCE
from tests.factories import MemberFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal
RULES = reverse("members:rules")


def _version_url(plan: CommissionPlan, policy: CompliancePolicy) -> str:
    return reverse("members:rules_version", args=[plan.version, policy.version])


def _three_levels(*, days_ago: int = 0):
    """Policy v2 (three levels) and plan v2 (50/30/20), in force since `days_ago` days (v1 of both, the migration's
    defaults, before that)."""
    policy = policy_publish(actor=None, note="three levels", max_levels=3)
    plan = plan_activate(
        plan=plan_create(actor=None, name="50/30/20", rates=(D("0.5"), D("0.3"), D("0.2"))), actor=None
    )
    if days_ago:
        since = timezone.now() - timedelta(days=days_ago)
        CompliancePolicy.objects.filter(pk=policy.pk).update(effective_from=since)
        CommissionPlan.objects.filter(pk=plan.pk).update(effective_from=since)
        plan.refresh_from_db()
        policy.refresh_from_db()
    return plan, policy


def _day(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "DATE_FORMAT")


def test_the_rules_page_shows_the_rules_in_force_and_the_example_from_the_calculation_to_anyone(client):
    # given: three levels, 50/30/20; most products on sale pay 20 % commission
    plan, policy = _three_levels()
    ProductFactory(commission_rate=D("0.2000"))
    ProductFactory(commission_rate=D("0.2000"))
    ProductFactory(commission_rate=D("0.0500"))
    expected = split_line(
        pool=line_pool(D("100.00"), D("0.2000")),
        net_amount=D("100.00"),
        chain=[ChainMember(member_id=n, is_eligible=True) for n in (1, 2, 3)],
        plan=plan.as_calculation(),
        policy=policy.as_calculation(),
    )
    assert [share.amount for share in expected.shares] == [D("10.00"), D("6.00"), D("4.00")]
    # when: anyone (no login) reads it in English and in Chinese
    for language in ("en", "zh-hans"):
        response = client.get(RULES, HTTP_ACCEPT_LANGUAGE=language)
        # then
        assert response.status_code == 200
        page = response.content.decode()
        assert response["Content-Language"] == language
        for amount in ("¥100.00", "¥20.00", "¥10.00", "¥6.00", "¥4.00", "¥30.00"):
            assert amount in page, (language, amount)
        for rate in ("50%", "30%", "20%"):
            assert rate in page
        assert 'id="footer-rules"' in page
        assert f'lang="{language}"' in page
    assert "public" in response["Cache-Control"] and "max-age=300" in response["Cache-Control"]
    client.force_login(MemberFactory().user)
    assert client.get(RULES)["Cache-Control"] == "private, max-age=0"


def test_the_example_shows_the_ceiling_that_reduced_the_shares(client):
    # given: a 90 % commission product (a pool of ¥90) under the 30 % payout ceiling: members get ¥30 in all
    _three_levels()
    ProductFactory(commission_rate=D("0.9000"))
    # when
    page = client.get(RULES).content.decode()
    # then: 50/30/20 of ¥30, the rest stays with the platform
    for amount in ("¥90.00", "¥15.00", "¥9.00", "¥6.00", "¥60.00"):
        assert amount in page, amount
    assert "reduced by the ceiling" in page


def test_the_history_lists_every_earlier_version_with_its_dates(client):
    # given: v1 (the migration's) until 40 days ago, then policy v2 until 10 days ago, then plan v2 with it
    policy = policy_publish(actor=None, note="three levels", max_levels=3)
    plan = plan_activate(
        plan=plan_create(actor=None, name="50/30/20", rates=(D("0.5"), D("0.3"), D("0.2"))), actor=None
    )
    forty, ten = timezone.now() - timedelta(days=40), timezone.now() - timedelta(days=10)
    CompliancePolicy.objects.filter(pk=policy.pk).update(effective_from=forty)
    CommissionPlan.objects.filter(pk=plan.pk).update(effective_from=ten)
    first_plan, first_policy = CommissionPlan.objects.get(version=1), CompliancePolicy.objects.get(version=1)
    # when
    periods = rules_timeline()
    page = client.get(RULES).content.decode()
    # then: three periods, each ending where the next starts
    assert [period.key for period in periods] == ["1-1", "1-2", "2-2"]
    assert [(p.starts, p.ends) for p in periods] == [
        (first_policy.effective_from, forty),
        (forty, ten),
        (ten, None),
    ]
    assert [change.name for change in periods[1].changes] == ["max_levels"]
    assert [change.name for change in periods[2].changes] == ["level1_rate", "level2_rate", "level3_rate"]
    history = page[page.index('id="history"') :]
    assert _version_url(first_plan, policy) in history and _version_url(first_plan, first_policy) in history
    assert _version_url(plan, policy) not in history  # in force: not history
    assert f"{_day(forty)} – {_day(ten)}" in history
    assert f"{_day(first_policy.effective_from)} – {_day(forty)}" in history
    # the latest earlier version first
    assert history.index(_version_url(first_plan, policy)) < history.index(_version_url(first_plan, first_policy))


def test_an_earlier_version_has_its_own_page_with_its_rules_dates_and_changes(client):
    ProductFactory(commission_rate=D("0.2000"))
    plan, policy = _three_levels(days_ago=5)
    first_plan, first_policy = CommissionPlan.objects.get(version=1), CompliancePolicy.objects.get(version=1)
    # when: the page of v1 (80/20, two levels)
    response = client.get(_version_url(first_plan, first_policy), HTTP_ACCEPT_LANGUAGE="en")
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "Earlier version" in page
    assert "80%" in page and "¥16.00" in page and "¥4.00" in page  # 80/20 of a ¥20 pool
    assert _version_url(plan, first_policy) not in page  # never in force together
    assert "The first version." in page
    # the next version says what changed: the levels, with both values
    newer = client.get(_version_url(plan, policy)).content.decode()
    assert "Max paid levels" in newer and "<strong>3</strong>" in newer


@pytest.mark.parametrize("path", ["/rules/v/1-9/", "/rules/v/9-1/", "/rules/v/2-1/"])
def test_a_version_that_never_was_in_force_is_404(client, path):
    _three_levels(days_ago=1)
    assert client.get(path).status_code == 404


def test_a_change_sooner_than_the_notice_period_is_refused_and_changes_nothing(settings):
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    draft = plan_create(actor=None, name="60/40", rates=(D("0.6"), D("0.4")))
    policies = CompliancePolicy.objects.count()
    # a plan or a policy from now, or in 6 days: refused, with the reason
    for start in (None, timezone.now() + timedelta(days=6)):
        with pytest.raises(CommissionError) as refused:
            plan_activate(plan=draft, actor=None, effective_from=start)
        assert refused.value.code == "notice"
        assert "7 days before it takes effect" in refused.value.messages[0]
        with pytest.raises(CommissionError) as refused:
            policy_publish(actor=None, note="lower", max_payout_ratio=D("0.2500"), effective_from=start)
        assert refused.value.code == "notice"
    draft.refresh_from_db()
    assert not draft.is_activated and draft.effective_from is None
    assert CompliancePolicy.objects.count() == policies
    # 7 days ahead is fine
    assert plan_activate(plan=draft, actor=None, effective_from=timezone.now() + timedelta(days=7, minutes=1))


def test_the_very_first_version_needs_no_notice(settings):
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    CommissionPlan.objects.all().delete()
    CompliancePolicy.objects.all().delete()
    policy = policy_publish(actor=None, note="setting up")
    plan = plan_activate(plan=plan_create(actor=None, name="sharer", rates=(D("1.0"),)), actor=None)
    assert policy.effective_from <= timezone.now() and plan.effective_from <= timezone.now()


def test_a_scheduled_change_is_announced_on_the_page_and_to_every_member_once(
    client, settings, django_capture_on_commit_callbacks
):
    # given
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    members = [MemberFactory() for _ in range(3)]
    closed = MemberFactory()
    Member.objects.filter(pk=closed.pk).update(status=Member.Status.CLOSED)
    starts = timezone.now() + timedelta(days=10)
    draft = plan_create(actor=None, name="70/30", rates=(D("0.7"), D("0.3")))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        plan_activate(plan=draft, actor=None, effective_from=starts)
    # then: the page announces it, with what changes, and keeps the rules in force as they are
    page = client.get(RULES).content.decode()
    assert f"Coming on {_day(starts)}" in page
    upcoming = page[page.index('id="upcoming"') : page.index('id="current"')]
    assert "80%" in upcoming and "<strong>70%</strong>" in upcoming
    assert rules_page().current.plan.version == 1
    # every member but the closed one is told, once
    events = NotificationEvent.objects.filter(event=Event.RULES_CHANGE)
    assert sorted(events.values_list("member_id", flat=True)) == sorted(m.pk for m in members)
    assert rules_change_collect(kind="plan", version=draft.version) == 0
    notifications_sweep()
    assert events.count() == 3
    # in their inbox, in both languages
    notifications_fan_out()
    notification = Notification.objects.get(member=members[0])
    assert notification.title == f"The commission rules change on {_day(starts)}"
    assert notification.url == RULES
    event = events.first()
    with translation.override("zh-hans"):
        chinese_day = _day(starts)
    assert chinese_day != _day(starts)
    assert chinese_day in render(event.event, event.context, "zh-hans").title


def test_the_sweep_announces_a_scheduled_version_whose_message_was_lost(settings):
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    member = MemberFactory()
    # published without running the on-commit announcement (a lost message)
    policy = policy_publish(
        actor=None, note="roll up", ineligible_share="roll_up", effective_from=timezone.now() + timedelta(days=8)
    )
    assert not NotificationEvent.objects.filter(event=Event.RULES_CHANGE).exists()
    notifications_sweep()
    notifications_sweep()
    assert list(NotificationEvent.objects.filter(event=Event.RULES_CHANGE).values_list("member_id", "key")) == [
        (member.pk, f"rules_change:policy:v{policy.version}:m{member.pk}")
    ]


def test_a_policy_published_for_later_puts_its_checkout_options_in_force_when_it_starts(settings):
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    before = attribution_options().binding_days
    policy = policy_publish(
        actor=None, note="bind buyers", binding_days=30, effective_from=timezone.now() + timedelta(days=7, hours=1)
    )
    assert policy_options_sync() is None or attribution_options().binding_days == before
    assert attribution_options().binding_days == before
    # a later version may not start before it
    with pytest.raises(CommissionError) as refused:
        policy_publish(
            actor=None, note="x", binding_days=10, effective_from=timezone.now() + timedelta(days=7, minutes=1)
        )
    assert refused.value.code == "before_scheduled"
    # when it starts
    CompliancePolicy.objects.filter(pk=policy.pk).update(effective_from=timezone.now() - timedelta(seconds=1))
    assert policy_options_sync().pk == policy.pk
    assert AttributionOptions.objects.get().binding_days == 30
    assert policy_options_sync() is None  # done once


def test_the_approval_of_a_scheduled_plan_puts_it_in_force_from_the_date_asked(settings):
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    call_command("staff_groups", verbosity=0)
    asker, approver = UserFactory(is_staff=True), UserFactory(is_staff=True)
    for user in (asker, approver):
        user.groups.add(Group.objects.get(name=COMPLIANCE))
    draft = plan_create(actor=asker, name="70/30", rates=(D("0.7"), D("0.3")))
    starts = timezone.now() + timedelta(days=9)
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season", effective_from=starts)
    decided = approval_decide(request=approval, approver=approver, approve=True)
    assert decided.status == "approved", decided.outcome
    draft.refresh_from_db()
    assert draft.is_activated and draft.effective_from == starts
    # asking without a date: refused at once (the notice), nothing asked
    second = plan_create(actor=asker, name="60/40", rates=(D("0.6"), D("0.4")))
    with pytest.raises(CommissionError):
        plan_activate_request(plan=second, actor=asker, reason="no date")
    _policy, policy_approval = policy_publish_request(
        actor=asker, note="later", values={"max_payout_ratio": D("0.2500")}, effective_from=starts
    )
    assert policy_approval.params["effective_from"] == starts.isoformat()
    # asked in time, approved too late (the notice counts from the approval): the approval fails, nothing changes
    approval = plan_activate_request(
        plan=second, actor=asker, reason="soon", effective_from=timezone.now() + timedelta(days=7, seconds=5)
    )
    settings.RULES_CHANGE_NOTICE_DAYS = 8
    decided = approval_decide(request=approval, approver=approver, approve=True)
    assert decided.status == "failed" and "days before it takes effect" in decided.outcome
    second.refresh_from_db()
    assert not second.is_activated


def test_the_rules_page_reads_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    # given: many versions
    for levels in (3, 2, 3, 2):
        policy_publish(actor=None, note="levels", max_levels=levels)
    for rates in ((D("0.6"), D("0.4")), (D("0.7"), D("0.3")), (D("0.5"), D("0.5"))):
        plan_activate(plan=plan_create(actor=None, name="p", rates=rates), actor=None)
    ProductFactory(commission_rate=D("0.2000"))
    # then: plans, policies, the example's rate
    with django_assert_max_num_queries(3):
        assert client.get(RULES).status_code == 200
    with django_assert_max_num_queries(3):
        assert client.get("/rules/v/1-1/").status_code == 200


def test_nothing_deletes_a_version_the_ledger_used():
    # the ledger's foreign keys to plan and policy protect them (never CASCADE or SET_NULL)
    for model in (CommissionEntry, OrderSplit, ExternalSplit):
        for name in ("plan", "policy"):
            assert model._meta.get_field(name).remote_field.on_delete is PROTECT, (model, name)


def test_staff_ask_in_the_admin_for_a_plan_from_a_date_and_a_sooner_date_is_refused(admin_client, settings):
    settings.RULES_CHANGE_NOTICE_DAYS = 7
    draft = plan_create(actor=None, name="70/30", rates=(D("0.7"), D("0.3")))
    plans = reverse("admin:commissions_commissionplan_changelist")
    form = {"action": "activate_now", "_selected_action": [draft.pk], "apply": "1", "reason": "New season"}
    # the form offers the first midnight after the notice period
    offered = admin_client.post(plans, {"action": "activate_now", "_selected_action": [draft.pk]})
    assert offered.context["form"]["effective_from"].initial > timezone.now() + timedelta(days=7)
    # too soon: refused at once with the reason, nothing asked
    soon = timezone.localtime() + timedelta(days=2)
    response = admin_client.post(plans, {**form, "effective_from": soon.strftime("%Y-%m-%d %H:%M")}, follow=True)
    assert "7 days before it takes effect" in response.content.decode()
    assert not ApprovalRequest.objects.exists()
    # in ten days: asked, with the date
    later = (timezone.localtime() + timedelta(days=10)).replace(second=0, microsecond=0)
    admin_client.post(plans, {**form, "effective_from": later.strftime("%Y-%m-%d %H:%M")})
    approval = ApprovalRequest.objects.get()
    assert approval.params == {"effective_from": later.isoformat()}
