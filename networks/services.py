"""External networks: tracking ids, reported orders (from the sync or a file), the sync itself, staff actions.

Every reported line is stored once per (network, order id, line id) and applied under its row lock: a report
fetched twice or a file imported twice changes nothing; a change updates the line, records an event and marks the
line for the ledger (`ExternalOrder.ledger_marked_at`). After the commit `networks.signals.external_orders_marked`
tells the ledger's keeper, the commissions app (which this app never imports), to write the difference.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from networks.connectors.base import ConnectorError, OrderStatus, ReportedOrder
from networks.locks import external_order_line_lock, external_order_lock, network_lock, report_import_lock
from networks.models import (
    ID_LENGTH,
    ExternalOrder,
    ExternalOrderEvent,
    ExternalProduct,
    Network,
    ReportImport,
    SyncRun,
    TrackingId,
)
from networks.selectors import report_import_progress_key
from networks.signals import external_orders_marked

logger = logging.getLogger(__name__)

STATUS_MAP = {
    OrderStatus.PAID: ExternalOrder.Status.PAID,
    OrderStatus.CONFIRMED: ExternalOrder.Status.CONFIRMED,
    OrderStatus.SETTLED: ExternalOrder.Status.SETTLED,
    OrderStatus.INVALID: ExternalOrder.Status.INVALID,
}


class NetworkError(ValidationError):
    pass


# --- Tracking ids ------------------------------------------------------------------------------------------------


def tracking_id_for(*, network: Network, member) -> TrackingId:
    """The member's tracking id on `network`, made on first use (random, so it tells an outsider nothing), or, for
    a network whose ids are created in its own console (淘宝联盟's 推广位), the one staff entered (NetworkError if
    there is none yet)."""
    from networks.connectors import CONNECTORS

    existing = TrackingId.objects.filter(network=network, member=member).first()
    if existing:
        return existing
    connector = CONNECTORS.get(network.code)
    if connector is not None and connector.tracking_ids_assigned_by_staff:
        raise NetworkError(
            _("%(network)s needs a promotion position of your own first; ask support to set one up for you.")
            % {"network": network.name},
            code="tracking_id_missing",
        )
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return TrackingId.objects.create(network=network, member=member, value=f"m{secrets.token_hex(6)}")
        except IntegrityError:
            existing = TrackingId.objects.filter(network=network, member=member).first()
            if existing:
                return existing
    raise NetworkError(_("Could not make a tracking id; try again."), code="tracking_id")


# --- Reported orders -----------------------------------------------------------------------------------------


@dataclass
class RecordResult:
    created: bool = False
    changed: bool = False
    stale: bool = False


def _member_for(network: Network, tracking_id: str):
    row = TrackingId.objects.filter(network=network, value=tracking_id).select_related("member").first()
    return row.member if row else None


# How far along its life a line is: a report at the same moment as the one applied may move it on, never back (an
# export has no "last changed" column, so an older file's rows can carry the same time as a newer one's).
STAGE = {
    ExternalOrder.Status.PAID: 0,
    ExternalOrder.Status.CONFIRMED: 1,
    ExternalOrder.Status.SETTLED: 2,
    ExternalOrder.Status.INVALID: 3,
}
ID_FIELDS = ("external_order_id", "line_id", "tracking_id", "product_id")


def _check_ids(reported: ReportedOrder, line_id: str) -> None:
    for name in ID_FIELDS:
        value = line_id if name == "line_id" else getattr(reported, name)
        if len(value) > ID_LENGTH:
            raise NetworkError(
                _("The network reported a %(field)s longer than %(max)d characters: %(value)s…")
                % {"field": name, "max": ID_LENGTH, "value": value[:40]},
                code="id_too_long",
            )


def external_order_record(*, network: Network, reported: ReportedOrder, source: str, actor=None) -> RecordResult:
    """Store one reported line (or its change) and mark it for the ledger, in one transaction; after the commit the
    ledger's keeper is told (`external_orders_marked`).

    A report older than the one applied changes nothing, and so does one from the same moment that would move the
    line back in its life (settled → paid, invalid → anything). A line that matched nobody is attributed as soon as
    a report names a tracking id we know (the same order may come first from a file, then from the API)."""
    with transaction.atomic():
        result = external_order_store(network=network, reported=reported, source=source, actor=actor)
        if result.created or result.changed:
            _ledger_told_after_commit()
        return result


def _ledger_told_after_commit() -> None:
    """Send `external_orders_marked` once the transaction that marked lines commits (one message for all of them)."""
    transaction.on_commit(external_orders_marked_send)


def external_orders_marked_send() -> None:
    """Tell the ledger's keeper that lines are marked. A receiver that fails is logged, never raised: what the
    network reported is committed, and the marked lines are picked up on the keeper's clock all the same."""
    for receiver, response in external_orders_marked.send_robust(sender=ExternalOrder):
        if isinstance(response, Exception):
            logger.error(
                "%s failed on marked external orders; they stay marked for the periodic pass",
                getattr(receiver, "__qualname__", receiver),
                exc_info=response,
            )


def external_order_store(*, network: Network, reported: ReportedOrder, source: str, actor=None) -> RecordResult:
    """Store one reported line (or its change) and mark it for the ledger, inside the caller's transaction (the
    sync's window, the import's file): the caller tells the ledger's keeper once, after its commit. The rules are
    `external_order_record`'s."""
    line_id = reported.line_id or "1"
    status = STATUS_MAP[reported.status]
    _check_ids(reported, line_id)
    with transaction.atomic():
        line = external_order_line_lock(network=network, external_order_id=reported.external_order_id, line_id=line_id)
        result = RecordResult()
        if line is None:
            line = _create_line(network, reported, line_id, status, source)
            if line is None:  # created by a concurrent writer meanwhile: apply as a change to it
                return external_order_store(network=network, reported=reported, source=source, actor=actor)
            result.created = True
            ExternalOrderEvent.objects.create(
                order=line, to_status=status, to_commission=line.commission, source=source, actor=actor
            )
        else:
            older = reported.updated_at < line.network_updated_at
            backwards = reported.updated_at == line.network_updated_at and STAGE[status] < STAGE[line.status]
            if older or backwards:
                result.stale = True  # never go back
                return result
            member = None
            if line.member_id is None and reported.tracking_id:
                member = _member_for(network, reported.tracking_id)
            before = (line.status, line.commission, line.settled_at, line.paid_amount)
            if before == (status, reported.commission, reported.settled_at, reported.paid_amount) and member is None:
                return result
            line.status, line.commission = status, reported.commission
            line.settled_at = reported.settled_at
            line.paid_amount = reported.paid_amount
            line.network_updated_at = reported.updated_at
            line.raw = reported.raw
            line.updated_at = line.ledger_marked_at = timezone.now()
            fields = ["status", "commission", "settled_at", "paid_amount", "network_updated_at", "raw", "updated_at",
                      "ledger_marked_at"]  # fmt: skip
            if member is not None:
                line.member, line.tracking_id = member, reported.tracking_id
                fields += ["member", "tracking_id"]
            line.save(update_fields=fields)
            ExternalOrderEvent.objects.create(
                order=line,
                from_status=before[0],
                to_status=status,
                from_commission=before[1],
                to_commission=reported.commission,
                source=source,
                actor=actor,
                note=_("attributed to member %(id)s by its tracking id") % {"id": member.pk} if member else "",
            )
            result.changed = True
        return result


def external_orders_unmark(*, line_ids: list[int]) -> int:
    """The ledger holds what these lines say now: clear their marks; return how many. For the ledger's keeper
    (commissions), in the transaction that wrote them, under their row locks: a change recorded meanwhile waits for
    the lock, so it is never unmarked unwritten."""
    return ExternalOrder.objects.filter(pk__in=line_ids).update(ledger_marked_at=None)


def _create_line(network, reported: ReportedOrder, line_id: str, status: str, source: str) -> ExternalOrder | None:
    """Insert the line; None if a concurrent writer inserted it first (any other refusal is raised)."""
    try:
        with transaction.atomic():
            return ExternalOrder.objects.create(
                network=network,
                external_order_id=reported.external_order_id,
                line_id=line_id,
                tracking_id=reported.tracking_id,
                member=_member_for(network, reported.tracking_id),
                product_id=reported.product_id,
                title=reported.title[:200],
                quantity=reported.quantity,
                paid_amount=reported.paid_amount,
                commission=reported.commission,
                status=status,
                paid_at=reported.paid_at,
                network_updated_at=reported.updated_at,
                settled_at=reported.settled_at,
                raw=reported.raw,
                source=source,
                ledger_marked_at=timezone.now(),
            )
    except IntegrityError:
        exists = ExternalOrder.objects.filter(
            network=network, external_order_id=reported.external_order_id, line_id=line_id
        ).exists()
        if not exists:
            raise  # a check constraint (a negative amount, say), not a concurrent insert
        return None


@transaction.atomic
def external_order_assign(*, line: ExternalOrder, member, actor) -> ExternalOrder:
    """Staff attribute an unmatched line to a member and mark it for the ledger: its commission is split from now on
    (at once after the commit, through `external_orders_marked`)."""
    line = external_order_lock(line.pk)
    if line.member_id is not None:
        raise NetworkError(_("This order is already attributed to a member."), code="already_matched")
    line.member = member
    line.ledger_marked_at = timezone.now()
    line.save(update_fields=["member", "ledger_marked_at"])
    ExternalOrderEvent.objects.create(
        order=line,
        from_status=line.status,
        to_status=line.status,
        from_commission=line.commission,
        to_commission=line.commission,
        source="staff",
        actor=actor,
        note=_("attributed to member %(id)s by staff") % {"id": member.pk},
    )
    _ledger_told_after_commit()
    return line


# --- The sync -------------------------------------------------------------------------------------------------


def _window_for(connector) -> tuple[timedelta, timedelta]:
    """(window, overlap): each call asks for overlap + window, which must fit the network's own limit."""
    window = timedelta(minutes=settings.NETWORK_SYNC_WINDOW_MINUTES)
    overlap = timedelta(minutes=settings.NETWORK_SYNC_OVERLAP_MINUTES)
    limit = getattr(connector, "max_window", None)
    if limit is not None and window + overlap > limit:
        window = max(limit - overlap, timedelta(minutes=1))
    return window, overlap


def network_sync(*, network: Network, now=None, requested_by=None, max_windows: int | None = None) -> SyncRun | None:
    """Fetch the order report window by window from the network's cursor to now, and record every line.

    Each window's pages are fetched first, outside any transaction (no lock waits on the network's answers); then
    one transaction, under the network row's lock, records the lines in a fixed order (order id, line id: the
    order a file import uses too, so the two never deadlock), marking each new or changed one for the ledger, and
    moves the cursor to the window's end; the ledger's keeper is told after the commit. A failure
    half-way leaves the cursor at the last window recorded completely, and the next run reads the rest again
    (harmless: recording is idempotent). Windows start a little before the cursor (NETWORK_SYNC_OVERLAP_MINUTES)
    because networks index late changes late. Any failure is recorded on the run and the network (its last error,
    failures in a row) and raised. Returns the run, or None if another sync of this network holds the lock.
    """
    from networks.connectors import get_connector

    now = now or timezone.now()
    connector = get_connector(network.code)
    run = SyncRun.objects.create(network=network, requested_by=requested_by)
    window, overlap = _window_for(connector)
    limit = max_windows or settings.NETWORK_SYNC_MAX_WINDOWS
    try:
        for _window in range(limit):
            known = Network.objects.get(pk=network.pk).cursor
            cursor = known or now - timedelta(days=settings.NETWORK_SYNC_FIRST_DAYS)
            start = cursor - overlap if known else cursor
            end = min(cursor + window, now)
            if end <= cursor and known:
                break
            lines, page = [], None
            while True:
                report = connector.fetch_orders(start, end, page)
                lines.extend(report.orders)
                page = report.next_page
                if not page:
                    break
            with transaction.atomic():
                locked = network_lock(network.pk, skip_locked=True)
                if locked is None:
                    run.delete()
                    return None
                if locked.cursor != known:
                    continue  # another run recorded this window meanwhile: read on from where it stopped
                marked = False
                for reported in sorted(lines, key=lambda line: (line.external_order_id, line.line_id or "1")):
                    result = external_order_store(network=locked, reported=reported, source="sync")
                    run.fetched += 1
                    run.created += int(result.created)
                    run.changed += int(result.changed)
                    marked = marked or result.created or result.changed
                if marked:
                    _ledger_told_after_commit()
                locked.cursor = end
                locked.last_sync_at = timezone.now()
                locked.last_error = ""
                locked.consecutive_failures = 0
                locked.save(update_fields=["cursor", "last_sync_at", "last_error", "consecutive_failures"])
                run.window_start = run.window_start or start
                run.window_end = end
            if end >= now:
                break
    except Exception as error:  # a network error, a deadlock, a line we refuse: never a run left "running"
        message = str(error) if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
        Network.objects.filter(pk=network.pk).update(
            last_error=message[:2000], consecutive_failures=F("consecutive_failures") + 1
        )
        _finish(run, SyncRun.Status.FAILED, message)
        raise
    _finish(run, SyncRun.Status.DONE)
    return run


def _finish(run: SyncRun, status: str, error: str = "") -> None:
    run.status = status
    run.error = error[:4000]
    run.finished_at = timezone.now()
    run.save()


# --- Products and listings ------------------------------------------------------------------------------------


def external_products_sync(*, network: Network, query: str = "", pages: int = 1) -> int:
    """Refresh the network's product feed into ExternalProduct (price, coupon, rate as last synced)."""
    from networks.connectors import get_connector

    connector = get_connector(network.code)
    count = 0
    for page in range(1, pages + 1):
        products = connector.search_products(query, page)
        if not products:
            break
        for product in products:
            ExternalProduct.objects.update_or_create(
                network=network,
                external_id=product.external_id,
                defaults={
                    "title": product.title[:200],
                    "image_url": product.image_url,
                    "price": product.price,
                    "coupon": product.coupon,
                    "commission_rate": product.commission_rate,
                    "shop_name": product.shop_name[:100],
                    "url": product.url,
                    "is_active": True,
                    "synced_at": timezone.now(),
                },
            )
            count += 1
    return count


def external_tracking_link(*, product: ExternalProduct, member) -> str:
    """The network's tracking link to `product` carrying `member`'s tracking id (an HTTP call to the network), for
    a shop's listing of it (`shops.services.external_listing_add`). NetworkError when the product is no longer
    offered, its network has no link service, or the network does not answer."""
    from networks.connectors import UnknownConnector, get_connector

    if not product.is_active or not product.network.is_enabled:
        raise NetworkError(_("This product is no longer offered."), code="inactive")
    try:
        connector = get_connector(product.network.code)
    except (UnknownConnector, ConnectorError) as error:  # no connector, or one not configured in the environment
        raise NetworkError(
            _("%(network)s has no link service yet: its products cannot be added to a shop.")
            % {"network": product.network.name},
            code="no_connector",
        ) from error
    tracking = tracking_id_for(network=product.network, member=member)
    try:
        return connector.tracking_link(product.external_id, tracking.value)
    except ConnectorError as error:
        logger.warning("tracking link for %s failed: %s", product.pk, error)
        raise NetworkError(
            _("%(network)s did not answer; try again in a minute.") % {"network": product.network.name},
            code="network_down",
        ) from error


# --- File imports ---------------------------------------------------------------------------------------------


IMPORT_PROGRESS_EVERY = 200  # lines recorded between two progress notes in the cache


def report_import_create(*, network: Network, file_name: str, content: bytes, actor=None) -> ReportImport:
    """Store an uploaded order-report file as a queued import, for `report_import_run` (a Celery task) to read.

    Stores only: the caller sends the task after the commit. The file is kept in the row (a worker on another
    machine reads it there) until the import is finished."""
    return ReportImport.objects.create(
        network=network,
        file_name=file_name[:200],
        file_sha256=hashlib.sha256(content).hexdigest(),
        file_size=len(content),
        content=content,
        uploaded_by=actor,
    )


def _report_import_finish(record: ReportImport, **fields) -> None:
    """End the run holding `record`'s lease: the file is dropped, whatever the outcome."""
    ReportImport.objects.filter(pk=record.pk, attempts=record.attempts, status=ReportImport.Status.RUNNING).update(
        finished_at=timezone.now(), content=b"", **fields
    )


def report_import_run(*, import_id: int) -> ReportImport | None:
    """Import one uploaded file: every line, or none (refused with the row and the reason). Returns the import.

    Safe to run twice, or at once from two deliveries of the task's message: a run starts only by taking the
    import's lease, one conditional UPDATE from `queued` (or from `running` for longer than a Celery task may live,
    which only a dead worker leaves) to `running`; a finished import is left as it is. The file is read and checked
    first, bounded (`networks.imports`), with the rows read so far committed as it goes; then every line is recorded
    in one transaction under the import's and the network's row locks (a sync of the network skips meanwhile), with
    the lines recorded so far noted in the cache. Any error is recorded on the import, never raised: refused for a
    bad file, failed for anything unexpected (logged), nothing imported either way."""
    from celery.exceptions import SoftTimeLimitExceeded

    from networks.imports import ImportRefused, parse_report_file

    now = timezone.now()
    lease_expired = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    Status = ReportImport.Status
    taken = (
        ReportImport.objects.filter(pk=import_id)
        .filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING, started_at__lt=lease_expired))
        .update(status=Status.RUNNING, started_at=now, attempts=F("attempts") + 1, rows_read=0)
    )
    if not taken:
        return ReportImport.objects.filter(pk=import_id).defer("content").first()
    record = ReportImport.objects.select_related("network").get(pk=import_id)
    try:
        earlier = _earlier_import(record)
        if earlier is not None:
            # The same bytes again: nothing would change, and refusing says so (an older file is not taken for news).
            _report_import_finish(record, status=Status.REFUSED, error=_already_imported(earlier))
        else:
            rows_read = ReportImport.objects.filter(pk=record.pk, attempts=record.attempts)
            try:
                rows = parse_report_file(
                    record.network.code,
                    record.file_name,
                    bytes(record.content),
                    progress=lambda number: rows_read.update(rows_read=number),
                )
            except ImportRefused as refused:
                _report_import_finish(record, status=Status.REFUSED, error_row=refused.row, error=refused.reason)
            else:
                _report_import_record(record, rows)
    except SoftTimeLimitExceeded:
        logger.warning("import %s of %s ran out of time", record.pk, record.network.code)
        reason = _("The import took longer than a task may run; nothing was imported. Split the file and try again.")
        _report_import_finish(record, status=Status.FAILED, error=reason)
    except Exception:  # a bug or an outage: recorded on the import, so it never stays "importing"
        logger.exception("import %s of %s failed", record.pk, record.network.code)
        reason = _("The import stopped on an unexpected error; nothing was imported. Try again later.")
        _report_import_finish(record, status=Status.FAILED, error=reason)
    finally:
        cache.delete(report_import_progress_key(record.pk))
    return ReportImport.objects.filter(pk=import_id).defer("content").first()


def _earlier_import(record: ReportImport) -> ReportImport | None:
    """A finished import of the same bytes into the same network, if any."""
    return (
        ReportImport.objects.filter(
            network_id=record.network_id, file_sha256=record.file_sha256, status=ReportImport.Status.DONE
        )
        .defer("content")
        .first()
    )


def _already_imported(earlier: ReportImport) -> str:
    return _("This file was imported already, on %(at)s (import %(id)s); nothing changed.") % {
        "at": timezone.localtime(earlier.uploaded_at).strftime("%Y-%m-%d %H:%M"),
        "id": earlier.pk,
    }


def _report_import_record(record: ReportImport, rows: list[ReportedOrder]) -> None:
    """Record the lines of a file read whole, all in one transaction, or none; end the import's run."""
    Status = ReportImport.Status
    rows.sort(key=lambda line: (line.external_order_id, line.line_id or "1"))  # the sync's lock order
    key = report_import_progress_key(record.pk)
    with transaction.atomic():
        locked = report_import_lock(
            ReportImport.objects.filter(pk=record.pk, attempts=record.attempts, status=Status.RUNNING).defer("content")
        )
        if locked is None:
            return  # the lease went to another run meanwhile (this one outlived a task's time limit)
        network_lock(record.network_id)  # one import of a network at once
        earlier = _earlier_import(record)
        if earlier is not None:  # imported by another upload of the same bytes while this one was being read
            _report_import_finish(record, status=Status.REFUSED, error=_already_imported(earlier))
            return
        counts = {"created": 0, "changed": 0, "stale": 0}
        cache.set(key, {"done": 0, "total": len(rows)}, timeout=settings.CELERY_TASK_TIME_LIMIT)
        try:
            with transaction.atomic():
                for done, reported in enumerate(rows, start=1):
                    result = external_order_store(
                        network=record.network,
                        reported=reported,
                        source=f"import {record.pk}",
                        actor=record.uploaded_by,
                    )
                    counts["created"] += int(result.created)
                    counts["changed"] += int(result.changed)
                    counts["stale"] += int(result.stale)
                    if done % IMPORT_PROGRESS_EVERY == 0:
                        cache.set(key, {"done": done, "total": len(rows)}, timeout=settings.CELERY_TASK_TIME_LIMIT)
        except (NetworkError, DatabaseError) as error:  # all or nothing: the savepoint rolled back
            if isinstance(error, DatabaseError):
                logger.exception("import %s of %s failed", record.pk, record.network.code)
                reason = _("The file could not be imported just now (the database refused it); nothing changed.")
            else:
                reason = " ".join(error.messages)
            _report_import_finish(record, status=Status.REFUSED, rows=len(rows), error=reason)
            return
        if counts["created"] or counts["changed"]:
            _ledger_told_after_commit()
        _report_import_finish(record, status=Status.DONE, rows=len(rows), rows_done=len(rows), **counts)


def report_import(*, network: Network, file_name: str, content: bytes, actor=None) -> ReportImport:
    """Store a report file and import it at once, in this process (for scripts and tests; admin queues the task)."""
    record = report_import_create(network=network, file_name=file_name, content=content, actor=actor)
    return report_import_run(import_id=record.pk)
