"""The fault-injection suite (issue #11): each scenario drives traffic, injects a fault, lets the system recover
and runs the ledger checker, once per seed. The table of scenarios × seeds × violations is printed at the end of
the run (and written as JSON to $FAULTS_REPORT when set); docs/reliability.md explains it."""

import json
import os
from dataclasses import asdict, dataclass, field

import pytest

SEEDS = [int(seed) for seed in os.environ.get("FAULT_SEEDS", "1,2,3").split(",") if seed.strip()]


@dataclass
class FaultRun:
    scenario: str
    seed: int
    violations: int  # ledger checker violations after recovery
    lost_orders: int = 0  # paid orders without a split, refunds of split orders without their reversal
    duplicate_payouts: int = 0  # withdrawals paid more than once by the provider
    figures: dict = field(default_factory=dict)  # what the traffic did: orders paid, refunds, payouts, faults …
    problems: list = field(default_factory=list)  # the checker's sentences, for the failure message


_RUNS: list[FaultRun] = []


@pytest.fixture
def fault_report():
    """Record one scenario × seed: `fault_report(FaultRun(...))`; the test still asserts on it itself."""

    def record(run: FaultRun) -> FaultRun:
        _RUNS.append(run)
        return run

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _RUNS:
        return
    by_scenario: dict[str, list[FaultRun]] = {}
    for run in _RUNS:
        by_scenario.setdefault(run.scenario, []).append(run)
    write = terminalreporter.write_line
    terminalreporter.section("fault injection: scenarios × seeds × violations")
    write("| scenario | seeds | violations | lost orders | duplicate payouts | traffic (summed over seeds) |")
    write("| --- | --- | ---: | ---: | ---: | --- |")
    for scenario, runs in sorted(by_scenario.items()):
        totals: dict[str, int] = {}
        for run in runs:
            for name, value in run.figures.items():
                if isinstance(value, int):
                    totals[name] = totals.get(name, 0) + value
        traffic = ", ".join(f"{name} {value}" for name, value in totals.items())
        write(
            f"| {scenario} | {','.join(str(run.seed) for run in runs)} | {sum(r.violations for r in runs)} "
            f"| {sum(r.lost_orders for r in runs)} | {sum(r.duplicate_payouts for r in runs)} | {traffic} |"
        )
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as report:
            json.dump([asdict(run) for run in _RUNS], report, indent=1, default=str)
