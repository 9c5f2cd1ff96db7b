"""Notifications (issue #22): one row per event and recipient (`NotificationEvent`, the outbox), the member's inbox
(`Notification`), one row per other channel tried (`Delivery`), the member's choices (`NotificationSettings`) and
where the collectors stopped reading the audit rows (`SourceCursor`).

Idempotency is in the unique keys: an event reaches a recipient once (`NotificationEvent.key`), and each channel
once per event (`Notification.source`, `Delivery` on (source, channel)), however often a task runs."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.TextChoices):
    ORDER_PAID = "order_paid", _("Order confirmation")
    ORDER_SHIPPED = "order_shipped", _("Order shipped")
    COMMISSION_PENDING = "commission_pending", _("New order with pending commission")
    COMMISSION_AVAILABLE = "commission_available", _("Commission available")
    COMMISSION_REVERSED = "commission_reversed", _("Commission reversed")
    WITHDRAWAL_APPROVED = "withdrawal_approved", _("Withdrawal approved")
    WITHDRAWAL_PAID = "withdrawal_paid", _("Withdrawal paid")
    WITHDRAWAL_FAILED = "withdrawal_failed", _("Withdrawal failed")
    WITHDRAWAL_REJECTED = "withdrawal_rejected", _("Withdrawal rejected")
    RULES_CHANGE = "rules_change", _("Change of the commission rules announced")


BUYER_EVENTS = (Event.ORDER_PAID, Event.ORDER_SHIPPED)
MEMBER_EVENTS = tuple(event for event in Event if event not in BUYER_EVENTS)


class Channel(models.TextChoices):
    INBOX = "inbox", _("In the app")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


# What a member gets before choosing: every event in the inbox and by email; SMS only when they ask for it.
DEFAULT_CHANNELS = (Channel.INBOX.value, Channel.EMAIL.value)


class NotificationEvent(models.Model):
    """One event for one recipient: a member, or a buyer's contact (email and/or phone)."""

    key = models.CharField(max_length=120, unique=True)
    event = models.CharField(_("event"), max_length=32, choices=Event.choices)
    member = models.ForeignKey(
        "referrals.Member", on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=20, blank=True)
    context = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The fan-out reads the events not yet fanned out; the index holds only those (small, cheap to keep).
            models.Index(fields=["id"], condition=Q(fanned_out_at__isnull=True), name="notifications_event_todo"),
        ]

    def __str__(self) -> str:
        return self.key


class Notification(models.Model):
    """A message in a member's inbox."""

    source = models.OneToOneField(NotificationEvent, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey("referrals.Member", on_delete=models.CASCADE, related_name="+", db_index=False)
    event = models.CharField(_("event"), max_length=32, choices=Event.choices)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ("-created_at", "-pk")
        indexes = [
            models.Index(fields=["member", "-created_at"], name="notifications_inbox"),
            models.Index(fields=["member"], condition=Q(read_at__isnull=True), name="notifications_unread"),
        ]

    def __str__(self) -> str:
        return self.title


class Delivery(models.Model):
    """One try-until-done of an event on one channel other than the inbox (email, SMS)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    source = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=300, blank=True)
    provider_reference = models.CharField(max_length=100, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification delivery")
        verbose_name_plural = _("notification deliveries")
        constraints = [models.UniqueConstraint(fields=["source", "channel"], name="notifications_delivery_once")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="notifications_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id}/{self.channel}: {self.status}"


class NotificationSettings(models.Model):
    """A member's choices: channels per event (`channels`: {event: [channel, …]}; an event not in it gets
    DEFAULT_CHANNELS) and the language of their messages (empty: settings.LANGUAGE_CODE)."""

    member = models.OneToOneField("referrals.Member", on_delete=models.CASCADE, related_name="+")
    language = models.CharField(_("language"), max_length=10, blank=True, choices=settings.LANGUAGES)
    channels = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"settings of member {self.member_id}"


class SourceCursor(models.Model):
    """How far a collector has read an audit table (the id of the last row it turned into events)."""

    name = models.CharField(max_length=40, unique=True)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"
