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
APPS = ("config", "demo", "members", "staff", "payouts", "commissions", "shops", "networks", "referrals", "accounts")

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
    assert "Contracts: 1 kept, 0 broken." in result.stdout


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


def test_the_declared_port_is_the_only_way_up_from_shops(tmp_path):
    """shops.services may tell commissions an order was paid or refunded; shops' views may not reach it."""
    copy = _copy_project(tmp_path)
    views = copy / "shops" / "views.py"
    views.write_text(
        views.read_text(encoding="utf-8") + "\n\nfrom commissions.services import commission_order_paid  # noqa\n",
        encoding="utf-8",
    )
    result = _lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "shops.views -> commissions.services" in result.stdout
    assert "shops.services -> commissions" not in result.stdout
