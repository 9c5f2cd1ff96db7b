"""Recruitment alone never earns anything (issue #25, SPEC §4 and §7, docs/compliance.md#recruitment-alone-never-
earns-anything): nothing in the code pays for a join.

Two kinds of proof:

- behaviour: members joining under an upline (through the join page and the join service, several levels deep)
  leave every money table as it was: no commission entry, no wallet, no withdrawal, no balance;
- structure: only the commission services write `CommissionEntry` (a static scan of the source), the tree's apps
  cannot reach them (they import nothing from commissions), every entry is tied to a sale by the database, and the
  ledger has no kind of entry for a signup or a headcount.
"""

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from commissions.models import CommissionEntry
from payouts.selectors import member_balance
from referrals.models import Member
from referrals.services import member_join
from tests.factories import MemberFactory, UserFactory

ROOT = Path(settings.BASE_DIR)
MONEY_APPS = ("commissions", "payouts")
# Every module that writes CommissionEntry rows, and why it may. A new writer fails the scan below: whoever adds one
# says here what sale it pays on.
LEDGER_WRITERS = {
    "commissions/services/split.py": "the split of a paid order's lines",
    "commissions/services/refunds.py": "reversals and clawbacks of a refund",
    "commissions/services/external.py": "sales an external network reported, and its changes to them",
    "commissions/services/risk.py": "reversing a sale's commission when staff confirm a risk flag",
}
WRITE_METHODS = {"create", "bulk_create", "get_or_create", "update_or_create"}
# The tree's apps: below commissions in the stack (.importlinter), so they cannot call a ledger writer.
TREE_APPS = ("accounts", "referrals")


# Not money: where a member signed in from (the join page signs the new member in), for the risk rules.
NOT_MONEY = {"commissions.RiskSighting"}


def money_rows() -> dict[str, int]:
    """The row count of every model of the money apps (MemberWallet, Withdrawal, CommissionEntry, ...)."""
    return {
        model._meta.label: model.objects.count()
        for app in MONEY_APPS
        for model in apps.get_app_config(app).get_models()
        if model._meta.label not in NOT_MONEY
    }


@pytest.mark.django_db
def test_joining_under_an_upline_pays_nobody_anything(client):
    # given: an upline two levels deep, with the default plan and policy in force
    root = MemberFactory()
    sponsor = MemberFactory(sponsor=root)
    before = money_rows()

    # when: people join under the sponsor, through the join page and the join service, and under them in turn
    client.post(
        reverse("members:join_with_code", args=[sponsor.invite_code]),
        {
            "email": "recruit@example.com",
            "first_name": "Recruit",
            "password1": "a-long-passphrase",
            "password2": "a-long-passphrase",
        },
    )
    recruit = Member.objects.get(user__email="recruit@example.com")
    joined = [member_join(user=UserFactory(), sponsor=sponsor) for _ in range(5)]
    joined += [member_join(user=UserFactory(), sponsor=recruit) for _ in range(5)]

    # then: the tree grew ...
    assert recruit.parent_id == sponsor.pk
    assert Member.objects.filter(parent__in=[sponsor, recruit]).count() == 11
    # ... and not one money row was written, nobody has a balance
    assert money_rows() == before
    for member in (root, sponsor, recruit, *joined):
        balance = member_balance(member)
        assert (balance.pending, balance.released, balance.withdrawable) == (Decimal("0.00"),) * 3


def _entry_names(tree: ast.Module) -> set[str]:
    """Names bound to CommissionEntry in a module: imported (aliased or not) or assigned (`Entry = CommissionEntry`)."""
    names = {"CommissionEntry"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "CommissionEntry"}
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Name)
                and node.value.id in names
                and all(isinstance(target, ast.Name) for target in node.targets)
            ):
                new = {target.id for target in node.targets} - names
                if new:
                    names |= new
                    changed = True
    return names


def _writes_entries(source: str) -> bool:
    """Whether a module creates CommissionEntry rows: `X(...)`, `X.objects.create/bulk_create/...(...)` for a name
    X bound to the model, or a COPY into its table (`X._meta.db_table`)."""
    tree = ast.parse(source)
    names = _entry_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name) and function.id in names:
                return True
            if (
                isinstance(function, ast.Attribute)
                and function.attr in WRITE_METHODS
                and isinstance(function.value, ast.Attribute)
                and function.value.attr == "objects"
                and isinstance(function.value.value, ast.Name)
                and function.value.value.id in names
            ):
                return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "db_table"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "_meta"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id in names
        ):
            return True
    return False


def _project_modules():
    skipped = {".venv", "node_modules", "tests", "migrations", "bench", ".git"}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if not skipped.intersection(relative.parts):
            yield relative.as_posix(), path.read_text(encoding="utf-8")


def test_only_the_commission_services_write_commission_entries():
    writers = {name for name, source in _project_modules() if _writes_entries(source)}

    assert writers == set(LEDGER_WRITERS)


def test_the_scan_would_see_a_new_writer():
    # The scan itself can fail: each way of writing an entry is recognised.
    assert _writes_entries("from commissions.models import CommissionEntry\nCommissionEntry.objects.create(level=1)")
    assert _writes_entries("from commissions.models import CommissionEntry as E\nE.objects.bulk_create([])")
    assert _writes_entries("from commissions.models import CommissionEntry\nEntry = CommissionEntry\nEntry(level=1)")
    assert _writes_entries("from commissions import models\nT = CommissionEntry._meta.db_table")
    assert not _writes_entries("from commissions.models import CommissionEntry\nCommissionEntry.objects.filter()")


def test_the_tree_apps_import_nothing_from_the_money_apps():
    # A join (referrals) or a sign-up (accounts) cannot call a ledger writer: they sit below commissions and payouts.
    for app in TREE_APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                for module in modules:
                    assert module.split(".")[0] not in MONEY_APPS, f"{path.relative_to(ROOT)} imports {module}"


def test_the_ledger_has_no_kind_of_entry_for_a_signup_or_a_headcount():
    assert set(CommissionEntry.Kind.values) == {"commission", "reversal", "clawback", "platform", "adjustment"}


@pytest.mark.django_db
def test_the_database_refuses_an_entry_without_a_sale():
    member = MemberFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        CommissionEntry.objects.create(
            beneficiary=member,
            level=1,
            kind=CommissionEntry.Kind.COMMISSION,
            base=Decimal("10.00"),
            rate=Decimal("1.0000"),
            amount=Decimal("10.00"),
            note="a bonus for recruiting",
        )
    assert not CommissionEntry.objects.exists()
