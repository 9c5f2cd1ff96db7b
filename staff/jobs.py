"""Job records: when each periodic job last finished (`staff.JobRun`), for the overview's health figures.

The jobs do not record themselves: the apps below staff know nothing of the back office. Celery's `task_success`
signal (sent by a worker, by `Task.apply()` and so by an eager `.delay()`, and by the embedded scheduler, which
runs due entries through `apply()`) reaches `job_run_record_on_success`, which upserts the row of a task listed
in RECORDED_JOBS with the task's return value. A run that raises is not recorded (it did not finish), nor is a
plain function call of a task (`clicks_flush_task()`), which sends no signal.

StaffConfig.ready() connects the receiver, once per process (a `dispatch_uid`).
"""

from __future__ import annotations

from dataclasses import dataclass

from celery.signals import task_success

from staff.services import job_run_record


@dataclass(frozen=True)
class RecordedJob:
    name: str  # the JobRun row
    task: str  # the Celery task (its registered name) whose successful runs update that row
    on_overview: bool  # the overview shows whether it is late (against its beat interval)
    result_format: str = "{}"  # the row's last_result, from the task's return value

    def result_label(self, result) -> str:
        return self.result_format.format(result)


RECORDED_JOBS = (
    RecordedJob("clicks_flush", "shops.tasks.clicks_flush_task", on_overview=True),
    RecordedJob("commission_release", "commissions.tasks.commission_release_due_task", on_overview=True),
    RecordedJob("commission_sweep", "commissions.tasks.commission_sweep_task", on_overview=True),
    RecordedJob("tree_index", "referrals.tasks.tree_index_pending_task", on_overview=True),
    RecordedJob("networks_sync", "networks.tasks.networks_sync_task", on_overview=False),
    RecordedJob("ledger_check", "staff.tasks.ledger_check_task", on_overview=False, result_format="{} violation(s)"),
    RecordedJob("payout_transfers_sync", "payouts.tasks.payout_transfers_sync_task", on_overview=False),
    RecordedJob("reconciliation", "staff.tasks.reconciliation_run_task", on_overview=False),
)
# Old names a listed task still runs under for one release (a message queued before an upgrade): recorded as it.
TASK_OLD_NAMES = {"referrals.tasks.clicks_flush_task": "shops.tasks.clicks_flush_task"}  # moved in issue #20
_BY_TASK = {job.task: job for job in RECORDED_JOBS}
_BY_TASK.update({old: _BY_TASK[new] for old, new in TASK_OLD_NAMES.items()})


def job_run_record_on_success(sender=None, result=None, **_kwargs) -> None:
    """`task_success` receiver: record the run of a listed task. Celery logs (and swallows) what a receiver
    raises, so a failed write here never fails the task; the job then only looks late on the overview."""
    job = _BY_TASK.get(getattr(sender, "name", None))
    if job is not None:
        job_run_record(name=job.name, result=job.result_label(result))


def job_records_connect() -> None:
    task_success.connect(job_run_record_on_success, weak=False, dispatch_uid="staff.jobs.job_run_record")
