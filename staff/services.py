from django.utils import timezone

from staff.models import JobRun


def job_run_record(*, name: str, result: str = "") -> None:
    """Note that periodic job `name` just finished (one upsert; safe from any task, any number of times)."""
    JobRun.objects.update_or_create(
        name=name, defaults={"last_finished_at": timezone.now(), "last_result": str(result)[:200]}
    )
