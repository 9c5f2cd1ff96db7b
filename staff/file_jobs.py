"""Files the back office generates in a Celery task and keeps for download (`staff.models.GeneratedFile`): the tax
reports (staff/tax_reports.py) and the evidence packs (staff/evidence.py). What they share lives here, once:

- asking: one row per file (its kind and period), queued again to generate it again, refused while a run of it is
  under way; the task is sent after the commit;
- the run's lease: a run starts only by taking the row (one conditional UPDATE from queued, or from running for
  longer than a task may live), writes its pieces under its own run number (`attempts`), and only a run still
  holding the lease when done swaps them in (`generation`); a run that outlived its lease throws its pieces away;
- a failure is recorded on the row (failed, with the reason) and logged, never raised, so a file never stays
  "generating";
- the file is stored as encrypted pieces of a few MB as it is written (never whole in memory), with its SHA-256,
  and streamed back piece by piece for the download.

Each kind describes itself with a `FileJob`: its model, its pieces' and events' models and their foreign key.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

from core.encryption import decrypt_bytes, encrypt_bytes
from core.spreadsheets import ChunkSink
from staff.locks import generated_file_lock
from staff.models import GeneratedFile

logger = logging.getLogger(__name__)

Status = GeneratedFile.Status
PIECE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileJob:
    model: type[GeneratedFile]
    piece_model: type[Model]  # generation, number, data (encrypted), and `parent`
    event_model: type[Model]  # kind ("requested", "generated", "failed", "downloaded"), actor, detail, and `parent`
    parent: str  # the pieces' and events' foreign key to the file's row: "report", "pack"

    def pieces(self, obj: GeneratedFile) -> QuerySet:
        return self.piece_model.objects.filter(**{self.parent: obj})

    def event(self, obj: GeneratedFile, kind: str, *, actor=None, detail: dict | None = None) -> None:
        self.event_model.objects.create(**{self.parent: obj}, kind=kind, actor=actor, detail=detail or {})


class FileJobBusy(Exception):
    """The file is being generated now: it is not queued a second time."""


def lease_expired_before():
    """A run that started before this has outlived any task (Celery's hard time limit): its lease is free."""
    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


def file_job_request(job: FileJob, *, lookup: dict, defaults: dict, actor, send: Callable[[int], object]):
    """Queue the file identified by `lookup` (new, with `defaults`, or again: the run replaces the earlier file when
    it is done), write a `requested` event and send its task after the commit (`send(pk)`). Raises FileJobBusy while
    a run of it is under way (and its lease is not over)."""
    with transaction.atomic():
        obj, _created = job.model.objects.get_or_create(**lookup, defaults={**defaults, "requested_by": actor})
        obj = generated_file_lock(job.model, obj.pk)  # two requests at once queue it once
        if obj.status == Status.RUNNING and obj.started_at and obj.started_at >= lease_expired_before():
            raise FileJobBusy
        obj.status, obj.requested_by, obj.requested_at = Status.QUEUED, actor, timezone.now()
        obj.rows_done = obj.rows_total = 0
        obj.error = ""
        obj.save(update_fields=["status", "requested_by", "requested_at", "rows_done", "rows_total", "error"])
        job.event(obj, "requested", actor=actor)
        transaction.on_commit(partial(send, obj.pk))
    return obj


def file_job_run(
    job: FileJob,
    pk: int,
    write: Callable[[GeneratedFile, int, QuerySet], tuple[dict, dict]],
    *,
    started: dict | None = None,
) -> GeneratedFile | None:
    """Run the generation of the file `pk` if its lease can be taken; else return the row as it is (None if there is
    none). `write(obj, run, mine)` writes the pieces of run `run` (PieceWriter) and may note its progress through
    `mine` (the row, as long as this run holds it: `mine.update(rows_done=…)`); it returns (the fields to set on the
    row when the run is kept, the detail of its `generated` event). `started`: more fields to reset when a run
    starts. Any error `write` raises is recorded on the row (failed, with the reason) and logged, never raised."""
    taken = (
        job.model.objects.filter(pk=pk)
        .filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING, started_at__lt=lease_expired_before()))
        .update(
            status=Status.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            attempts=F("attempts") + 1,
            rows_done=0,
            rows_total=0,
            error="",
            **(started or {}),
        )
    )
    if not taken:
        return job.model.objects.filter(pk=pk).first()
    obj = job.model.objects.get(pk=pk)
    run = obj.attempts
    # Pieces of runs that never finished (a lost worker): neither the kept run's nor this one's.
    job.pieces(obj).exclude(generation__in=[obj.generation, run]).delete()
    mine = job.model.objects.filter(pk=pk, attempts=run, status=Status.RUNNING)
    try:
        fields, detail = write(obj, run, mine)
    except Exception as error:  # a bug or an outage: recorded on the row, so it never stays "generating"
        logger.exception("%s %s (%s) failed", job.model._meta.verbose_name, pk, obj)
        job.pieces(obj).filter(generation=run).delete()
        with transaction.atomic():
            if mine.update(status=Status.FAILED, finished_at=timezone.now(), error=str(error)[:500] or repr(error)):
                job.event(obj, "failed", detail={"run": run})
        return job.model.objects.get(pk=pk)
    with transaction.atomic():
        kept = mine.update(status=Status.DONE, finished_at=timezone.now(), generation=run, **fields)
        if kept:
            job.pieces(obj).exclude(generation=run).delete()
            job.event(obj, "generated", detail={"run": run, **detail})
    if not kept:  # another run took the lease meanwhile (this one outlived it): its file wins
        job.pieces(obj).filter(generation=run).delete()
    return job.model.objects.get(pk=pk)


class PieceWriter:
    """A file of run `generation` stored as it comes, in encrypted pieces of PIECE_BYTES (`sink` is a write-only
    file: a ZipFile or an XLSX writer can write into it), with the SHA-256 and size of its clear bytes. `fields`: the
    pieces' other columns (a tax report's format). Call `sink.close()` when the file is written."""

    def __init__(self, job: FileJob, obj: GeneratedFile, generation: int, **fields):
        self.job, self.obj, self.generation, self.fields = job, obj, generation, fields
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.sink = ChunkSink(self._store, size=PIECE_BYTES)

    def _store(self, number: int, piece: bytes) -> None:
        self.sha256.update(piece)
        self.size += len(piece)
        self.job.piece_model.objects.create(
            **{self.job.parent: self.obj},
            generation=self.generation,
            number=number,
            data=encrypt_bytes(piece),
            **self.fields,
        )


def pieces_stream(job: FileJob, obj: GeneratedFile, **fields) -> Iterator[bytes]:
    """The kept file of `obj` in clear, piece by piece (one piece in memory at a time)."""
    ids = list(
        job.pieces(obj).filter(generation=obj.generation, **fields).order_by("number").values_list("pk", flat=True)
    )

    def stream() -> Iterator[bytes]:
        for pk in ids:
            yield decrypt_bytes(job.piece_model.objects.values_list("data", flat=True).get(pk=pk))

    return stream()
