"""Every write of the webhooks app: endpoints (create, change, rotate the secret, switch off and on, delete), events
and their deliveries (recorded once per fact and endpoint), attempts (one HTTP request each, logged), replays.

Delivery rules (docs/webhooks.md):
- An event is recorded once per fact (`Event.key`) and delivered once per endpoint (`Delivery` unique on
  (event, endpoint)), however often the announcement or the task arrives.
- A worker sends only a delivery it claimed: a conditional UPDATE of a pending, due, unclaimed row. A second message
  for the same delivery (a redelivered task) finds it claimed, delivered or not yet due, and sends nothing.
- A failed attempt (no 2xx: an error status, a redirect, a timeout, a refused connection) is retried after
  WEBHOOKS_RETRY_SCHEDULE (1 min, 5 min, 30 min, 2 h, 12 h); after the last the delivery is failed. An endpoint whose
  attempts have failed for WEBHOOKS_DISABLE_AFTER_HOURS with no success between is switched off, and its owner told.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.task_helpers import task_send
from members.webhooks.addresses import endpoint_url_check
from members.webhooks.events import EventFact, facts_for, recent_fact_ids, topic_event_types
from members.webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event, EventType, new_secret
from members.webhooks.signing import SIGNATURE_HEADER, payload_body, signature_header

logger = logging.getLogger(__name__)

EXCERPT_BYTES = 2048
EXCERPT_CHARS = 500
CLAIM_SECONDS = 60  # longer than the connect and read timeouts together
USER_AGENT = "cps-webhooks/1"


class WebhookError(ValidationError):
    """A refusal to show the user (a form error, a 400), never a 500."""


# --- Endpoints ----------------------------------------------------------------------------------------------------


def _clean_event_types(event_types) -> list[str]:
    known = [value for value, _label in EventType.choices]
    chosen = [value for value in known if value in set(event_types or [])]
    unknown = set(event_types or []) - set(known)
    if unknown:
        raise WebhookError({"event_types": [_("Unknown event: %(name)s.") % {"name": sorted(unknown)[0]}]})
    if not chosen:
        raise WebhookError({"event_types": [_("Choose at least one event.")]})
    return chosen


def _clean_url(url: str) -> str:
    try:
        return endpoint_url_check(url)
    except ValidationError as error:
        raise WebhookError({"url": error.messages}) from None


def endpoint_create(*, owner, url: str, event_types, description: str = "", actor=None) -> Endpoint:
    """A new endpoint with a fresh secret (the caller shows `endpoint.secret` once). `owner` None: a staff endpoint.
    Raises WebhookError for a refused URL, no or unknown events, or a member over WEBHOOKS_MAX_ENDPOINTS."""
    url = _clean_url(url)
    event_types = _clean_event_types(event_types)
    with transaction.atomic():
        if owner is not None:
            count = Endpoint.objects.filter(owner=owner).count()
            if count >= settings.WEBHOOKS_MAX_ENDPOINTS:
                raise WebhookError(
                    _("You can have at most %(count)d endpoints; delete one first.")
                    % {"count": settings.WEBHOOKS_MAX_ENDPOINTS}
                )
        return Endpoint.objects.create(
            owner=owner, url=url, event_types=event_types, description=(description or "")[:100], created_by=actor
        )


def endpoint_update(*, endpoint: Endpoint, url: str, event_types, description: str = "") -> Endpoint:
    endpoint.url = _clean_url(url)
    endpoint.event_types = _clean_event_types(event_types)
    endpoint.description = (description or "")[:100]
    endpoint.save(update_fields=["url", "event_types", "description"])
    return endpoint


def endpoint_rotate_secret(*, endpoint: Endpoint, now=None) -> Endpoint:
    """A new secret (the caller shows it once). The old one keeps signing beside it for
    WEBHOOKS_SECRET_ROTATION_HOURS, so the receiver can switch without losing a request."""
    now = now or timezone.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOKS_SECRET_ROTATION_HOURS)
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def endpoint_set_active(*, endpoint: Endpoint, is_active: bool, reason: str = "", now=None) -> Endpoint:
    """Switch an endpoint on (its failure streak forgotten) or off (its pending deliveries stop)."""
    now = now or timezone.now()
    with transaction.atomic():
        endpoint.is_active = is_active
        endpoint.disabled_at = None if is_active else now
        endpoint.disabled_reason = "" if is_active else reason[:200]
        endpoint.failing_since = None if is_active else endpoint.failing_since
        endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "failing_since"])
        if not is_active:
            endpoint.deliveries.filter(status=Delivery.Status.PENDING).update(
                status=Delivery.Status.FAILED, next_attempt_at=None
            )
    return endpoint


def endpoint_delete(*, endpoint: Endpoint) -> None:
    endpoint.delete()


# --- Events and deliveries ----------------------------------------------------------------------------------------


def _wanted(endpoint: Endpoint, fact: EventFact) -> bool:
    """The endpoint chose the event's type, the event concerns its member (or it is staff's), and it existed when the
    fact happened (a new endpoint does not receive the past)."""
    return (
        fact.type in endpoint.event_types
        and (endpoint.owner_id is None or endpoint.owner_id in fact.member_ids)
        and (fact.occurred_at is None or endpoint.created_at <= fact.occurred_at)
    )


def webhook_events_record(*, topic: str, object_ids: list[int]) -> list[int]:
    """Record the events a domain announcement means and a delivery for each endpoint that wants one; after the
    commit, ask for the new deliveries to be sent. Idempotent: an event exists once per fact, a delivery once per
    (event, endpoint). Returns the ids of the deliveries created now."""
    wanted_types = topic_event_types(topic)
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(is_active=True)
        if wanted_types.intersection(endpoint.event_types)
    ]
    if not endpoints:
        return []  # nobody listens: not even an event row
    created = []
    with transaction.atomic():
        for fact in facts_for(topic, object_ids):
            targets = [endpoint for endpoint in endpoints if _wanted(endpoint, fact)]
            if not targets:
                continue
            event, _new = Event.objects.get_or_create(key=fact.key, defaults={"type": fact.type, "data": fact.data})
            now = timezone.now()
            for endpoint in targets:
                delivery, is_new = Delivery.objects.get_or_create(
                    event=event, endpoint=endpoint, defaults={"next_attempt_at": now}
                )
                if is_new:
                    created.append(delivery.pk)
        for delivery_id in created:
            transaction.on_commit(partial(delivery_send_request, delivery_id))
    return created


def delivery_send_request(delivery_id: int) -> None:
    """Ask a worker to attempt the delivery (the periodic sweep sends it if this message is lost)."""
    # Function-local: the tasks module imports this one (as commissions.services.split does with its tasks).
    from members.webhooks.tasks import webhook_delivery_attempt_task  # tasks import this module

    task_send(
        webhook_delivery_attempt_task,
        delivery_id,
        logger=logger,
        fallback="the webhook sweep sends it within a minute",
    )


@dataclass(frozen=True)
class Response:
    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int


def _post(url: str, body: bytes, headers: dict) -> Response:
    started = time.monotonic()
    proxies = {"http": settings.WEBHOOKS_PROXY_URL, "https": settings.WEBHOOKS_PROXY_URL}
    try:
        endpoint_url_check(url)  # again: the name may point elsewhere since the endpoint was saved
        with requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(settings.WEBHOOKS_CONNECT_TIMEOUT, settings.WEBHOOKS_READ_TIMEOUT),
            allow_redirects=False,
            stream=True,
            proxies=proxies if settings.WEBHOOKS_PROXY_URL else None,
        ) as response:
            raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
            excerpt = raw.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]
            return Response(response.status_code, excerpt, "", int((time.monotonic() - started) * 1000))
    except ValidationError as error:
        message = " ".join(error.messages)
    except requests.Timeout:
        message = _("Timed out.")
    except requests.ConnectionError:
        message = _("Could not connect.")
    except requests.RequestException as error:
        message = type(error).__name__
    return Response(None, "", message[:200], int((time.monotonic() - started) * 1000))


def _claim(delivery_id: int, now) -> bool:
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return bool(
        Delivery.objects.filter(
            unclaimed, pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
        ).update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
    )


def _signing_secrets(endpoint: Endpoint, now) -> list[str]:
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def delivery_payload(delivery: Delivery) -> dict:
    """What every attempt of the delivery sends (the body is these keys, compact and sorted)."""
    event = delivery.event
    return {"id": event.public_id, "type": event.type, "created": int(event.created_at.timestamp()), "data": event.data}


def delivery_attempt(*, delivery_id: int, now=None) -> DeliveryAttempt | None:
    """Send the delivery once if it is pending, due and not claimed by another worker; log the attempt and settle
    what comes next (delivered, a retry at its time, failed). Returns the attempt, or None when nothing was sent."""
    clock = now or timezone.now()
    if not _claim(delivery_id, clock):
        return None
    delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.is_active:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.FAILED, next_attempt_at=None, claimed_until=None
        )
        return None
    number = delivery.attempt_count + 1
    trigger = DeliveryAttempt.Trigger.FIRST
    if number > 1:
        trigger = DeliveryAttempt.Trigger.RETRY if delivery.failures else DeliveryAttempt.Trigger.REPLAY
    payload = {
        "id": event.public_id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "data": event.data,
    }
    body = payload_body(payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(_signing_secrets(endpoint, clock), timestamp, body),
        "X-Webhook-Id": event.public_id,
        "X-Webhook-Attempt": str(number),
    }
    started_at = timezone.now()
    response = _post(endpoint.url, body, headers)
    # `now` (tests) stands for the moment the answer came; by default it is the real one.
    settled_at = now or timezone.now()
    return _settle(delivery, number=number, trigger=trigger, started_at=started_at, response=response, now=settled_at)


def _settle(delivery: Delivery, *, number: int, trigger: str, started_at, response: Response, now) -> DeliveryAttempt:
    is_success = response.status_code is not None and 200 <= response.status_code < 300
    error = response.error
    if response.status_code is not None and not is_success:
        error = _("The endpoint answered %(code)d.") % {"code": response.status_code}
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    with transaction.atomic():
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            trigger=trigger,
            started_at=started_at,
            duration_ms=response.duration_ms,
            status_code=response.status_code,
            is_success=is_success,
            error=error[:200],
            response_excerpt=response.excerpt,
        )
        fields = {"attempt_count": number, "claimed_until": None, "last_status_code": response.status_code}
        if is_success:
            fields.update(status=Delivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
        elif delivery.failures < len(schedule):
            fields.update(
                next_attempt_at=now + timedelta(seconds=schedule[delivery.failures]), failures=F("failures") + 1
            )
        else:
            fields.update(status=Delivery.Status.FAILED, next_attempt_at=None, failures=F("failures") + 1)
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        _endpoint_health(delivery.endpoint_id, is_success=is_success, now=now)
    return attempt


def _endpoint_health(endpoint_id: int, *, is_success: bool, now) -> None:
    endpoints = Endpoint.objects.filter(pk=endpoint_id)
    if is_success:
        endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    cutoff = now - timedelta(hours=settings.WEBHOOKS_DISABLE_AFTER_HOURS)
    endpoint = endpoints.filter(is_active=True, failing_since__lte=cutoff).select_related("owner__user").first()
    if endpoint is None:
        return
    reason = _("Switched off: every attempt failed for %(hours)d hours.") % {
        "hours": settings.WEBHOOKS_DISABLE_AFTER_HOURS
    }
    endpoint_set_active(endpoint=endpoint, is_active=False, reason=reason, now=now)
    transaction.on_commit(partial(_notice_disabled, endpoint.pk))


def _notice_disabled(endpoint_id: int) -> None:
    """Tell the owner (staff endpoints: the site's admins) that an endpoint was switched off. Never raises."""
    endpoint = Endpoint.objects.select_related("owner__user").get(pk=endpoint_id)
    logger.warning("webhook endpoint %s (%s) switched off: %s", endpoint.pk, endpoint.url, endpoint.disabled_reason)
    subject = _("Webhook endpoint switched off")
    message = _(
        "Deliveries to %(url)s have failed for too long, so the endpoint was switched off: %(reason)s "
        "Fix the receiver, switch the endpoint on again, and replay the deliveries you need."
    ) % {"url": endpoint.url, "reason": endpoint.disabled_reason}
    try:
        email = endpoint.owner.user.email if endpoint.owner_id else ""
        if email:
            send_mail(subject, message, None, [email])
        elif endpoint.owner_id is None:
            mail_admins(subject, message)
    except Exception:
        logger.exception("could not send the notice for webhook endpoint %s", endpoint.pk)


def delivery_replay(*, delivery: Delivery, now=None) -> Delivery:
    """Send the delivery again now, as a new attempt (same event id and body, a fresh signature); if that fails it is
    retried on the schedule from the start. Refused when the endpoint is switched off."""
    now = now or timezone.now()
    if not delivery.endpoint.is_active:
        raise WebhookError(_("Switch the endpoint on before replaying its deliveries."))
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if not Delivery.objects.filter(unclaimed, pk=delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=now, failures=0, claimed_until=None
    ):
        raise WebhookError(_("An attempt is under way; look again in a minute."))
    transaction.on_commit(partial(delivery_send_request, delivery.pk))
    delivery.refresh_from_db()
    return delivery


def deliveries_due_send(*, limit: int = 500, now=None) -> int:
    """Ask for every pending delivery whose time has come (retries, and first attempts whose message was lost)."""
    now = now or timezone.now()
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    ids = list(
        Delivery.objects.filter(unclaimed, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in ids:
        delivery_send_request(delivery_id)
    return len(ids)


def webhook_events_sweep(*, now=None) -> int:
    """Record the events whose announcement was lost (a crash between a commit and its signal, the broker down when
    the receiver sent its message): the facts of the last WEBHOOKS_SWEEP_HOURS, never before the oldest active
    endpoint existed, that have no event yet (only the endpoint owners' facts when no staff endpoint listens).
    Idempotent like the announcements. Returns the number of deliveries created."""
    now = now or timezone.now()
    endpoints = list(Endpoint.objects.filter(is_active=True).values_list("owner_id", "created_at"))
    if not endpoints:
        return 0
    since = max(
        min(created_at for _owner, created_at in endpoints), now - timedelta(hours=settings.WEBHOOKS_SWEEP_HOURS)
    )
    owners = {owner for owner, _created_at in endpoints}
    member_ids = None if None in owners else owners
    created = 0
    for topic, ids in recent_fact_ids(since, member_ids).items():
        types = topic_event_types(topic)
        keys = [f"{event_type}:{pk}" for event_type in types for pk in ids]
        recorded = {
            int(key.rsplit(":", 1)[1]) for key in Event.objects.filter(key__in=keys).values_list("key", flat=True)
        }
        missing = sorted(set(ids) - recorded)
        if missing:
            created += len(webhook_events_record(topic=topic, object_ids=missing))
    if created:
        logger.warning("webhook sweep recorded %d deliveries whose announcement was lost", created)
    return created
