"""The back office's locks: a generated file's row (a tax report, an evidence pack) while it is queued again
(staff.file_jobs). The order of all locks: core/locks.py (the back office's own rows come after every app's, and
nothing locks them with another)."""

from core.locks import row_lock
from staff.models import GeneratedFile


def generated_file_lock(model: type[GeneratedFile], pk: int) -> GeneratedFile:
    """The row `pk` of a generated file's model, locked (`model.DoesNotExist` if there is none)."""
    return row_lock(model.objects.filter(pk=pk))
