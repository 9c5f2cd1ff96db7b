"""Notifications' writes: `notify` (one event for one recipient), the collectors that turn the domain apps' audit
rows into events, the fan-out to the channels each recipient chose, and the sends, retried with back-off.

How an event travels (nothing here ever runs inside the transaction that moved money):

1. The domain apps announce after their commit (`shops.signals.order_status_changed`,
   `payouts.signals.withdrawals_changed`, `commissions.signals.commission_entries_changed`); the receivers
   (`notifications.receivers`) only ask for work: one `notifications_run_task` per burst (a cache flag,
   `core.task_helpers.task_request_once`), or for ledger entries one `notifications_entries_task` with their ids.
2. The run reads the audit rows (`OrderEvent` and `WithdrawalEvent` past a cursor, `CommissionEntry` by the ids it
   was given) and writes one `NotificationEvent` per event and recipient; its unique key makes a second read of
   the same rows a no-op.
3. The fan-out claims events not yet fanned out (SKIP LOCKED: two workers take different ones), writes the inbox
   rows and one `Delivery` per other chosen channel (unique per event and channel), in one transaction.
4. The sends claim due deliveries (pending → sending, in a transaction of their own), send outside any transaction,
   and mark them sent; a failure is retried with back-off (NOTIFICATIONS_RETRY_SECONDS, doubled each time, at most
   NOTIFICATIONS_MAX_ATTEMPTS tries), a refusal for good (a wrong number) fails the delivery at once.
5. The sweep (beat, every two minutes) re-reads the last half hour of audit rows (a lost signal, or a row that committed
   after a later one the cursor had passed), releases deliveries stuck in sending (a worker killed mid-send) and
   asks for a run.

A delivery is sent once per (event, recipient, channel) however often the tasks run or are delivered: the only
way to send twice is a worker killed between the provider's answer and the mark, which the sweep then retries.
"""

import contextlib
import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy
from commissions.signals import AVAILABLE, CREATED, PLAN, POLICY
from core.site_url import absolute_url
from core.sms import SmsError, phone_masked, sms_send
from core.task_helpers import task_request_next, task_request_once, task_send
from members.notifications.locks import deliveries_claim, events_claim
from members.notifications.messages import render
from members.notifications.models import (
    DEFAULT_CHANNELS,
    Channel,
    Delivery,
    Event,
    Notification,
    NotificationEvent,
    NotificationSettings,
    SourceCursor,
)
from payouts.models import Withdrawal, WithdrawalEvent
from referrals.models import Member
from shops.couriers import courier_for
from shops.models import Order, OrderEvent

logger = logging.getLogger(__name__)

RUN_SCHEDULED_KEY = "notifications:run-scheduled"
COLLECT_CHUNK = 2000  # audit rows read per source and run
# How far back the sweep re-reads transitions and releases: a lost announcement, or a row that committed after a later
# one the cursor had passed, is seconds old when the sweep (every two minutes) looks; a beat stopped for longer than
# this loses those messages (never money).
SWEEP_LOOKBACK = timedelta(minutes=30)
STUCK_AFTER = timedelta(minutes=10)  # a delivery still "sending" this long after its claim: its worker died

ORDER_EVENTS = {Order.Status.PAID: Event.ORDER_PAID, Order.Status.SHIPPED: Event.ORDER_SHIPPED}
WITHDRAWAL_EVENTS = {
    Withdrawal.Status.APPROVED: Event.WITHDRAWAL_APPROVED,
    Withdrawal.Status.PAID: Event.WITHDRAWAL_PAID,
    Withdrawal.Status.FAILED: Event.WITHDRAWAL_FAILED,
    Withdrawal.Status.REJECTED: Event.WITHDRAWAL_REJECTED,
}
Entry = CommissionEntry


# --- Asking for work ---------------------------------------------------------------------------------------------


def notify(*, key: str, event: str, member=None, email: str = "", phone: str = "", context: dict) -> None:
    """Tell one recipient (a member, or a buyer's email and/or phone) about `event`, on the channels they chose.

    Idempotent: a `key` already used does nothing (the first event stands). Sent after the current transaction
    commits, by a task; never raises because a channel is down."""
    notify_many(
        [NotificationEvent(key=key, event=event, member=member, email=email or "", phone=phone or "", context=context)]
    )


def notify_many(events: list[NotificationEvent]) -> None:
    """`notify` for many recipients at once (one insert, one request for a run)."""
    if events:
        _events_insert(events)
        transaction.on_commit(notifications_requested)


def _events_insert(events: list[NotificationEvent]) -> None:
    """Record events (a key already recorded is skipped); the caller fans them out or asks for a run."""
    known = _keys_known([event.key for event in events])
    events = [event for event in events if event.key not in known]
    if events:  # ignore_conflicts still: a concurrent run may record the same key meanwhile
        NotificationEvent.objects.bulk_create(events, ignore_conflicts=True, batch_size=1000)


def _keys_known(keys: list[str]) -> set[str]:
    """Which of `keys` are recorded already (one indexed read: a re-read by the sweep writes nothing)."""
    known = set()
    for start in range(0, len(keys), 5000):
        known.update(NotificationEvent.objects.filter(key__in=keys[start : start + 5000]).values_list("key", flat=True))
    return known


def notifications_requested() -> bool:
    """Ask for a run unless one is asked for and not started (one message for a burst of events)."""
    from members.notifications.tasks import notifications_run_task

    return task_request_once(
        flag=RUN_SCHEDULED_KEY,
        task=notifications_run_task,
        flag_seconds=settings.NOTIFICATIONS_FLAG_SECONDS,
        logger=logger,
        fallback="the notifications sweep will send them",
    )


def rules_change_requested(kind: str, version: int) -> None:
    """Ask for the announcement of a scheduled plan or policy version (`commissions.signals.rules_change_scheduled`);
    the sweep announces it if the message is lost."""
    from members.notifications.tasks import rules_change_task

    task_send(rules_change_task, kind, version, logger=logger, fallback="the notifications sweep will announce it")


def notifications_entries_requested(entry_ids: list[int], change: str) -> bool:
    """Ask for the events of these ledger entries (one message per writing transaction: the ids it announced)."""
    from members.notifications.tasks import notifications_entries_task

    return task_send(
        notifications_entries_task, list(entry_ids), change, logger=logger, fallback="the sweep will find them"
    )


# --- One run -----------------------------------------------------------------------------------------------------


def notifications_run() -> int:
    """One run (the task): collect new audit rows, fan out a batch of events and send what is due. A full batch asks
    for the next run at once, so idle workers join in. Returns how many events were fanned out."""
    cache.delete(RUN_SCHEDULED_KEY)
    notifications_collect()
    limit = settings.NOTIFICATIONS_BATCH
    fanned = notifications_fan_out(limit=limit)
    if fanned == limit:
        task_request_next(notifications_requested)
    deliveries_send_due(limit=limit * 2)
    return fanned


# --- Collecting events from the audit rows ----------------------------------------------------------------------


def _cursor(name: str) -> int:
    return SourceCursor.objects.get_or_create(name=name)[0].position


def _cursor_move(name: str, position: int) -> None:
    SourceCursor.objects.filter(name=name, position__lt=position).update(position=position)


def notifications_collect(*, since=None) -> int:
    """Turn order and withdrawal transitions into events: those past the cursors, or with `since` (the sweep) every
    one recorded since then, whatever the cursors say. Returns how many audit rows were read."""
    read = 0
    orders = OrderEvent.objects.filter(kind=OrderEvent.Kind.STATUS, to_status__in=list(ORDER_EVENTS))
    withdrawals = WithdrawalEvent.objects.filter(to_status__in=list(WITHDRAWAL_EVENTS))
    if since is None:
        orders = orders.filter(pk__gt=_cursor("orders")).order_by("pk")[:COLLECT_CHUNK]
        withdrawals = withdrawals.filter(pk__gt=_cursor("withdrawals")).order_by("pk")[:COLLECT_CHUNK]
    else:
        orders = orders.filter(created_at__gte=since).order_by("pk")
        withdrawals = withdrawals.filter(created_at__gte=since).order_by("pk")
    rows = list(orders.values_list("pk", "order_id", "to_status"))
    if rows:
        _order_events(rows)
        read += len(rows)
        if since is None:
            _cursor_move("orders", rows[-1][0])
    rows = list(withdrawals.values_list("pk", "withdrawal_id", "to_status", "reason"))
    if rows:
        _withdrawal_events(rows)
        read += len(rows)
        if since is None:
            _cursor_move("withdrawals", rows[-1][0])
    return read


def _order_events(rows) -> None:
    known = _keys_known([f"order:{pk}" for pk, _order_id, _to in rows])
    rows = [row for row in rows if f"order:{row[0]}" not in known]
    orders = Order.objects.in_bulk([order_id for _pk, order_id, _to in rows])
    events = []
    for pk, order_id, to_status in rows:
        order = orders[order_id]
        if not (order.buyer_email or order.buyer_phone):
            continue
        context = {
            "number": order.number,
            "total": str(order.total),
            "url": absolute_url(reverse("shops:order_detail", args=[order.number])),
            # The courier's name (its code when it is not in the table) and the waybill number, once shipped with them.
            "courier": str(courier_for(order.courier).name) if order.courier else "",
            "waybill": order.waybill_number,
        }
        events.append(
            NotificationEvent(
                key=f"order:{pk}",
                event=ORDER_EVENTS[to_status],
                email=order.buyer_email,
                phone=order.buyer_phone,
                context=context,
            )
        )
    _events_insert(events)


def _withdrawal_events(rows) -> None:
    withdrawals = dict(Withdrawal.objects.filter(pk__in=[w for _pk, w, _to, _r in rows]).values_list("pk", "member_id"))
    amounts = dict(Withdrawal.objects.filter(pk__in=list(withdrawals)).values_list("pk", "amount"))
    _events_insert(
        [
            NotificationEvent(
                key=f"withdrawal:{pk}",
                event=WITHDRAWAL_EVENTS[to_status],
                member_id=withdrawals[withdrawal_id],
                context={
                    "amount": str(amounts[withdrawal_id]),
                    "reason": reason[:200],
                    "url": reverse("members:payouts"),
                },
            )
            for pk, withdrawal_id, to_status, reason in rows
        ]
    )


def entries_collect(*, entry_ids: list[int], change: str) -> int:
    """Turn ledger entries (`commissions.signals`: created or made available) into events for their beneficiaries:
    one per member and sale (an order, an external line): pending commission on a new sale, commission taken back by
    a refund (reversal and clawback entries), commission made available. Returns how many events."""
    members = Entry.objects.filter(pk__in=entry_ids, beneficiary__isnull=False)
    if change == CREATED:
        members = members.filter(kind__in=[Entry.Kind.COMMISSION, Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK])
    elif change == AVAILABLE:
        members = members.filter(kind=Entry.Kind.COMMISSION, status__in=[Entry.Status.AVAILABLE, Entry.Status.PAID])
    else:
        return 0  # voided pending entries: the reversal entries written with them say it
    groups: dict[tuple, list] = defaultdict(lambda: [Decimal("0"), None, None])
    for pk, order_id, line_id, refund_id, revision, member_id, kind, amount in members.values_list(
        "pk", "order_id", "external_line_id", "refund_id", "revision", "beneficiary_id", "kind", "amount"
    ).iterator(chunk_size=2000):
        sale = f"o{order_id}" if order_id else f"x{line_id}"
        if change == AVAILABLE:
            event = Event.COMMISSION_AVAILABLE
        elif kind == Entry.Kind.COMMISSION:
            event = Event.COMMISSION_PENDING
        else:
            event = Event.COMMISSION_REVERSED
            sale = f"{sale}:{refund_id or f'r{revision}'}"
        group = groups[(event, sale, member_id)]
        group[0] += abs(amount)
        group[1] = pk if group[1] is None else min(group[1], pk)
        group[2] = order_id
    numbers = dict(Order.objects.filter(pk__in={g[2] for g in groups.values() if g[2]}).values_list("pk", "number"))
    events = []
    for (event, sale, member_id), (amount, first_pk, order_id) in groups.items():
        if amount <= 0:
            continue
        # A release is dated by its first entry: a later release of the same sale (an external adjustment) is news.
        suffix = f":{first_pk}" if event == Event.COMMISSION_AVAILABLE else ""
        events.append(
            NotificationEvent(
                key=f"{event}:{sale}:m{member_id}{suffix}",
                event=event,
                member_id=member_id,
                context={
                    "amount": str(amount),
                    "number": numbers.get(order_id, ""),
                    "url": reverse("members:commission_entries"),
                },
            )
        )
    _events_insert(events)
    return len(events)


RULES_CHANGE_CHUNK = 5000  # members whose events are checked and inserted at once


def rules_change_collect(*, kind: str, version: int) -> int:
    """Tell every member (closed accounts aside) that plan or policy `version` (`kind`: "plan" or "policy") takes
    effect later: one event each, in bulk, keyed by the version, so a second call (the signal and the sweep, a
    redelivered task) adds nothing. A version already in force, or not activated, is not announced. Returns how
    many events were written."""
    model = CommissionPlan if kind == PLAN else CompliancePolicy
    versions = model.objects.filter(version=version, effective_from__gt=timezone.now())
    if kind == PLAN:
        versions = versions.filter(is_activated=True)
    starts = versions.values_list("effective_from", flat=True).first()
    if starts is None:
        return 0
    context = {"kind": kind, "version": version, "effective_from": starts.isoformat(), "url": reverse("members:rules")}
    member_ids = Member.objects.exclude(status=Member.Status.CLOSED).order_by("pk").values_list("pk", flat=True)
    written, chunk = 0, []
    for member_id in member_ids.iterator(chunk_size=RULES_CHANGE_CHUNK):
        chunk.append(member_id)
        if len(chunk) == RULES_CHANGE_CHUNK:
            written += _rules_change_events(kind, version, context, chunk)
            chunk = []
    written += _rules_change_events(kind, version, context, chunk)
    _cursor(f"rules:{kind}")  # the row, for the move
    _cursor_move(f"rules:{kind}", version)
    return written


def _rules_change_events(kind: str, version: int, context: dict, member_ids: list[int]) -> int:
    events = [
        NotificationEvent(
            key=f"{Event.RULES_CHANGE}:{kind}:v{version}:m{member_id}",
            event=Event.RULES_CHANGE,
            member_id=member_id,
            context=context,
        )
        for member_id in member_ids
    ]
    known = _keys_known([event.key for event in events])
    _events_insert([event for event in events if event.key not in known])
    return len(events) - len(known)


def rules_changes_collect() -> int:
    """The scheduled versions not yet announced (past the cursors): what a lost signal left. Two indexed reads when
    there is nothing to do."""
    now, written = timezone.now(), 0
    for kind, versions in (
        (PLAN, CommissionPlan.objects.filter(is_activated=True)),
        (POLICY, CompliancePolicy.objects.all()),
    ):
        scheduled = versions.filter(effective_from__gt=now, version__gt=_cursor(f"rules:{kind}"))
        for version in scheduled.order_by("version").values_list("version", flat=True):
            written += rules_change_collect(kind=kind, version=version)
    return written


# --- Fan-out ---------------------------------------------------------------------------------------------------


def member_channels(member_settings: NotificationSettings | None, event: str) -> list[str]:
    """The channels a member chose for `event` (DEFAULT_CHANNELS until they choose)."""
    if member_settings is None or event not in member_settings.channels:
        return list(DEFAULT_CHANNELS)
    return [c for c in member_settings.channels[event] if c in Channel.values]


def member_language(member_settings: NotificationSettings | None) -> str:
    return (member_settings and member_settings.language) or settings.LANGUAGE_CODE


@transaction.atomic
def notifications_fan_out(*, limit: int = 500) -> int:
    """Write the inbox rows and deliveries of up to `limit` events not yet fanned out; return how many events.
    Safe to run twice or at once (claimed with SKIP LOCKED; unique per event and channel)."""
    ids = events_claim(limit)
    if not ids:
        return 0
    events = list(NotificationEvent.objects.filter(pk__in=ids))
    member_ids = {e.member_id for e in events if e.member_id}
    chosen = {s.member_id: s for s in NotificationSettings.objects.filter(member_id__in=member_ids)}
    contacts = {
        pk: (email, phone)
        for pk, email, phone in Member.objects.filter(pk__in=member_ids).values_list("pk", "user__email", "user__phone")
    }
    now = timezone.now()
    inbox, deliveries, contact_updates = [], [], []
    for event in events:
        if event.member_id is None:  # a buyer: every contact they gave
            channels = [c for c, address in ((Channel.EMAIL, event.email), (Channel.SMS, event.phone)) if address]
        else:
            member_settings = chosen.get(event.member_id)
            channels = member_channels(member_settings, event.event)
            email, phone = contacts.get(event.member_id, ("", ""))
            event.email, event.phone = email or "", phone or ""
            contact_updates.append(event)
            if Channel.INBOX in channels:
                text = render(event.event, event.context, member_language(member_settings))
                inbox.append(
                    Notification(
                        source=event,
                        member_id=event.member_id,
                        event=event.event,
                        title=text.title,
                        body=text.body,
                        url=event.context.get("url", ""),
                        created_at=event.created_at,
                    )
                )
            channels = [c for c in channels if (c == Channel.EMAIL and email) or (c == Channel.SMS and phone)]
        deliveries.extend(Delivery(source=event, channel=channel, next_attempt_at=now) for channel in channels)
    Notification.objects.bulk_create(inbox, ignore_conflicts=True, batch_size=1000)
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=1000)
    if contact_updates:  # the addresses the deliveries go to, as they were at the event
        NotificationEvent.objects.bulk_update(contact_updates, ["email", "phone"], batch_size=1000)
    NotificationEvent.objects.filter(pk__in=ids).update(fanned_out_at=now)
    return len(events)


# --- Sending ---------------------------------------------------------------------------------------------------


def deliveries_send_due(*, limit: int = 1000, now=None) -> int:
    """Send up to `limit` due deliveries; return how many were sent. Each is claimed first (pending → sending, in a
    transaction of its own, SKIP LOCKED), so a duplicate run finds nothing to send; the sends run outside any
    transaction. A failure is retried with back-off; a refusal for good fails the delivery."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        ids = deliveries_claim(due, limit)
        if not ids:
            return 0
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + STUCK_AFTER
        )
    deliveries = list(Delivery.objects.filter(pk__in=ids).select_related("source").order_by("pk"))
    languages = _languages({d.source.member_id for d in deliveries if d.source.member_id})
    sent, retry_in = [], None
    mail = get_connection(fail_silently=False)
    try:
        if any(d.channel == Channel.EMAIL for d in deliveries):
            with contextlib.suppress(Exception):  # a server down now fails each email below, retried later
                mail.open()  # one connection for the batch (send_messages closes only what it opened itself)
        for delivery in deliveries:
            try:
                reference = _send(delivery, languages, mail)
            except Exception as error:  # any failure of a channel is the delivery's, never the run's
                delay = _failed(delivery, error)
                if delay is not None:
                    retry_in = delay if retry_in is None else min(retry_in, delay)
            else:
                sent.append((delivery.pk, reference))
    finally:
        mail.close()
    moment = timezone.now()
    by_reference = defaultdict(list)
    for pk, reference in sent:
        by_reference[reference[:100]].append(pk)
    for reference, pks in by_reference.items():
        Delivery.objects.filter(pk__in=pks).update(
            status=Delivery.Status.SENT, sent_at=moment, provider_reference=reference, last_error=""
        )
    if retry_in is not None:
        from members.notifications.tasks import notifications_send_task

        try:
            notifications_send_task.apply_async(countdown=retry_in)
        except Exception:  # the broker is down: the sweep retries what is due
            logger.exception("could not schedule the retry of notifications; the sweep will")
    return len(sent)


def _languages(member_ids: set) -> dict:
    return {s.member_id: member_language(s) for s in NotificationSettings.objects.filter(member_id__in=member_ids)}


def _send(delivery: Delivery, languages: dict, mail) -> str:
    event = delivery.source
    language = languages.get(event.member_id, settings.LANGUAGE_CODE)
    text = render(event.event, event.context, language)
    url = event.context.get("url", "")
    if delivery.channel == Channel.EMAIL:
        body = text.body + (f"\n\n{absolute_url(url) if url.startswith('/') else url}" if url else "")
        message = EmailMessage(text.title, body, settings.DEFAULT_FROM_EMAIL, [event.email], connection=mail)
        message.send(fail_silently=False)
        return "email"
    if delivery.channel == Channel.SMS:
        return sms_send(phone=event.phone, template=event.event, params=text.sms_params, text=text.body) or "sms"
    raise ValueError(f"unknown channel {delivery.channel!r}")


def _failed(delivery: Delivery, error: Exception) -> int | None:
    """Record a failed send: back to pending with back-off (None once given up or refused for good); returns the
    delay before the retry in seconds."""
    permanent = isinstance(error, SmsError) and not error.transient
    attempts = delivery.attempts  # read after the claim, which counted this attempt
    address = phone_masked(delivery.source.phone) if delivery.channel == Channel.SMS else "an email address"
    logger.warning(
        "notification %s via %s to %s failed (attempt %s): %s",
        delivery.source.key, delivery.channel, address, attempts, error,
    )  # fmt: skip
    if permanent or attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, last_error=str(error)[:300])
        return None
    delay = settings.NOTIFICATIONS_RETRY_SECONDS * 2 ** (attempts - 1)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=str(error)[:300],
    )
    return delay


# --- The sweep -------------------------------------------------------------------------------------------------


def notifications_sweep(*, now=None) -> int:
    """What a lost signal or a dead worker left: re-read the last half hour of transitions and releases, put deliveries
    stuck in sending back to pending, and ask for a run. Returns how many audit rows and entries were re-read."""
    now = now or timezone.now()
    since = now - SWEEP_LOOKBACK
    read = notifications_collect(since=since)
    # Entries: those written since the sweep last looked (created), and those released within the look-back.
    after = _cursor("entries")
    created = list(
        Entry.objects.filter(pk__gt=after, created_at__lte=now - timedelta(seconds=60))
        .order_by("pk")
        .values_list("pk", flat=True)[:20_000]
    )
    if created:
        read += len(created)
        entries_collect(entry_ids=created, change=CREATED)
        _cursor_move("entries", created[-1])
    released = list(
        Entry.objects.filter(released_at__gte=since, kind=Entry.Kind.COMMISSION).values_list("pk", flat=True)
    )
    if released:
        read += len(released)
        entries_collect(entry_ids=released, change=AVAILABLE)
    read += rules_changes_collect()
    Delivery.objects.filter(status=Delivery.Status.SENDING, next_attempt_at__lte=now).update(
        status=Delivery.Status.PENDING
    )
    transaction.on_commit(notifications_requested)
    return read


# --- The member's side -----------------------------------------------------------------------------------------


def notification_mark_read(*, member, notification_id: int | None = None) -> int:
    """Mark one of the member's notifications read (or all of them, with no id); return how many changed. Another
    member's notification is never touched (0)."""
    unread = Notification.objects.filter(member=member, read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())


def notification_settings_save(*, member, channels: dict[str, list[str]], language: str) -> NotificationSettings:
    """Save a member's channels per event and language (unknown events and channels are dropped)."""
    clean = {
        event: [c for c in channels.get(event, []) if c in Channel.values]
        for event in Event.values
        if event in channels
    }
    chosen, _created = NotificationSettings.objects.update_or_create(
        member=member, defaults={"channels": clean, "language": language}
    )
    return chosen


def member_notifications_forget(*, member) -> dict:
    """The member's account closes (members.services.member_close): their inbox, their choices and the addresses
    their messages were to go to are erased, and what was still to be sent is not sent. In the caller's transaction.
    Idempotent. Returns what was removed (counts, for the closure's audit row)."""
    events = NotificationEvent.objects.filter(member=member)
    unsent = Delivery.objects.filter(
        source__in=events, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
    ).update(status=Delivery.Status.FAILED, last_error="account closed")
    addresses = events.exclude(email="", phone="").update(email="", phone="")
    inbox = Notification.objects.filter(member=member).delete()[0]
    choices = NotificationSettings.objects.filter(member=member).delete()[0]
    return {"inbox": inbox, "addresses": addresses, "unsent": unsent, "settings": choices}
