"""Outbound webhooks: an endpoint an integrator registered, the events we announce, one delivery of an event to an
endpoint, and each attempt at it (the log). Written only by webhooks/services.py."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class EventType(models.TextChoices):
    ORDER_PAID = "order.paid", _("Order paid")
    COMMISSION_CREATED = "commission.created", _("Commission created")
    COMMISSION_AVAILABLE = "commission.available", _("Commission available")
    COMMISSION_REVERSED = "commission.reversed", _("Commission reversed")
    PAYOUT_PAID = "payout.paid", _("Payout paid")


SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of generated secrets, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class Endpoint(models.Model):
    """A URL that receives signed events. A member's endpoint receives the events about their own orders,
    commission entries and withdrawals; a staff endpoint (no owner) receives every event."""

    owner = models.ForeignKey(
        "referrals.Member",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        verbose_name=_("member"),
        help_text=_("Empty: a staff endpoint, which receives every event."),
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=100, blank=True)
    event_types = models.JSONField(_("events"), default=list)
    # The secret signs every request; it is shown once (when created or rotated). After a rotation the previous
    # secret signs too (a second v1= in the header) until `previous_secret_expires_at`, so the receiver can switch.
    secret = models.CharField(_("signing secret"), max_length=80, default=new_secret, editable=False)
    previous_secret = models.CharField(max_length=80, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    disabled_at = models.DateTimeField(_("switched off"), null=True, blank=True)
    disabled_reason = models.CharField(_("why switched off"), max_length=200, blank=True)
    # Set by the first failed attempt after a success; cleared by any success. Failing longer than
    # WEBHOOKS_DISABLE_AFTER_HOURS switches the endpoint off.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return self.url

    @property
    def secret_hint(self) -> str:
        """The secret's first characters, to tell two apart; never enough to sign."""
        return self.secret[: len(SECRET_PREFIX) + 4] + "…"

    def event_type_labels(self) -> list[str]:
        labels = dict(EventType.choices)
        return [str(labels.get(value, value)) for value in self.event_types]


class Event(models.Model):
    """Something that happened, as integrators see it: `data` is the snapshot sent (no buyer contact details).
    `key` makes it once per fact (an order paid once, an entry released once), whatever signal arrives twice."""

    public_id = models.CharField(_("event id"), max_length=32, unique=True, default=new_event_id, editable=False)
    type = models.CharField(_("type"), max_length=30, choices=EventType.choices)
    key = models.CharField(max_length=100, unique=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class Delivery(models.Model):
    """One event to one endpoint: at most one per pair (the unique key), however often the event is recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("webhook delivery", "Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event"))
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(_("attempts"), default=0)
    # Failed attempts since the delivery was created or replayed: the position in the retry schedule.
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # A worker that claimed the delivery holds it until then (longer than the request's timeouts): a second
    # message for the same delivery finds it claimed and sends nothing.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(_("last response"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ("-created_at", "-pk")
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhooks_delivery_once")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery, with what came back. Numbered per delivery, once each (the unique key)."""

    class Trigger(models.TextChoices):
        FIRST = "first", _("First attempt")
        RETRY = "retry", _("Automatic retry")
        REPLAY = "replay", _("Replay")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(_("attempt"))
    trigger = models.CharField(_("trigger"), max_length=8, choices=Trigger.choices, default=Trigger.FIRST)
    started_at = models.DateTimeField(_("sent"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    status_code = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    is_success = models.BooleanField(_("succeeded"), default=False)
    error = models.CharField(_("error"), max_length=200, blank=True)
    response_excerpt = models.TextField(_("response (first characters)"), blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ("-number",)
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_once"),
            models.CheckConstraint(condition=Q(number__gte=1), name="webhooks_attempt_number_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"
