"""The apps form a stack (docs/architecture.md), checked by import-linter's contract in `.importlinter`.

CI runs `lint-imports` as a step of its own; these tests run the same contract from the test suite and prove it
can fail: a copy of the project with one wrong-way import, hidden inside a function, is refused.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
APPS = (
    "config",
    "demo",
    "members",
    "staff",
    "payouts",
    "commissions",
    "shops",
    "networks",
    "referrals",
    "accounts",
)

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="needs import-linter's lint-imports next to the Python running the tests"
)


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / ".importlinter"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy_project(tmp_path: Path) -> Path:
    """The Python packages and the contract, without tests, migrations' data or anything else."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    for app in (*APPS, "core"):
        shutil.copytree(ROOT / app, copy / app, ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.mo"))
    return copy


def test_the_stack_holds():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_wrong_way_import_inside_a_function_breaks_the_contract(tmp_path):
    copy = _copy_project(tmp_path)
    tree = copy / "referrals" / "tree.py"
    tree.write_text(
        tree.read_text(encoding="utf-8") + "\n\ndef _upward():\n    from payouts import selectors  # noqa\n",
        encoding="utf-8",
    )
    result = _lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "referrals is not allowed to import payouts" in result.stdout
    assert "referrals.tree -> payouts.selectors" in result.stdout


def test_shops_reaches_commissions_only_through_its_signals(tmp_path):
    """The port is a signal shops declares (shops/signals.py); even shops.services may not import commissions."""
    copy = _copy_project(tmp_path)
    services = copy / "shops" / "services.py"
    services.write_text(
        services.read_text(encoding="utf-8") + "\n\nfrom commissions.services import commission_orders_paid  # noqa\n",
        encoding="utf-8",
    )
    result = _lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "shops.services -> commissions.services" in result.stdout


def test_every_relation_between_apps_points_down_the_stack():
    """The schema follows the stack too: a model's foreign keys and one-to-ones reach only apps below its own (the
    migrations' history keeps older edges; the models of today have none that goes up or round)."""
    from django.apps import apps

    floors = ["staff", "payouts", "commissions", "shops", "networks", "referrals", "accounts"]
    upward = []
    for model in apps.get_models():
        own = model._meta.app_label
        if own not in floors:
            continue
        for field in model._meta.get_fields():
            if not (field.is_relation and field.concrete and field.related_model is not None):
                continue
            target = field.related_model._meta.app_label
            if target in floors and floors.index(target) <= floors.index(own) and target != own:
                upward.append(f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}")
    assert upward == []


def test_members_and_staff_never_import_each_other(tmp_path):
    copy = _copy_project(tmp_path)
    overview = copy / "staff" / "overview.py"
    overview.write_text(
        overview.read_text(encoding="utf-8") + "\n\ndef _sideways():\n    from members import selectors  # noqa\n",
        encoding="utf-8",
    )
    result = _lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The shop owner's side and the back office are independent BROKEN" in result.stdout
