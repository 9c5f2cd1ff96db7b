"""What each event says, in the recipient's language: pure functions of the event's context (no database)."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils import formats, timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from core.money import format_money
from members.notifications.models import Event


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    sms_params: tuple[str, ...]  # the SMS template's parameters, in order (core.sms)


def _money(context: dict, name: str = "amount") -> str:
    value = context.get(name)
    return format_money(Decimal(value)) if value not in (None, "") else ""


def render(event: str, context: dict, language: str) -> Rendered:
    """The title, text and SMS parameters of `event` with `context`, in `language`."""
    with translation.override(language):
        return _render(event, context)


def notifications_in_language(notifications, language: str) -> None:
    """Inbox notifications (with their `source` loaded) redrawn in `language`, the page's: what was sent by email or
    SMS went out in the member's chosen language and stays as sent. A message that can no longer be drawn (an
    event whose context changed shape since) keeps its text."""
    for notification in notifications:
        try:
            shown = render(notification.event, notification.source.context, language)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue
        notification.title, notification.body = shown.title, shown.body


def _render(event: str, c: dict) -> Rendered:
    number, amount, reason = c.get("number", ""), _money(c), c.get("reason", "")
    if event == Event.ORDER_PAID:
        total = _money(c, "total")
        return Rendered(
            _("Order %(number)s confirmed") % {"number": number},
            _("Thank you: we have your payment of %(total)s for order %(number)s. We will tell you when it ships.")
            % {"total": total, "number": number},
            (number, total),
        )
    if event == Event.ORDER_SHIPPED:
        courier, waybill = c.get("courier", ""), c.get("waybill", "")
        body = _("Your order %(number)s is on its way.") % {"number": number}
        if courier or waybill:
            body += " " + _("Courier: %(courier)s, waybill number: %(waybill)s.") % {
                "courier": courier or "—",
                "waybill": waybill or "—",
            }
        return Rendered(_("Order %(number)s has shipped") % {"number": number}, body, (number, courier, waybill))
    if event == Event.COMMISSION_PENDING:
        return Rendered(
            _("New order: %(amount)s commission pending") % {"amount": amount},
            _("An order through your links or your team earns you %(amount)s. It stays pending until the sale is "
              "final, then becomes available to withdraw.") % {"amount": amount},
            (amount,),
        )  # fmt: skip
    if event == Event.COMMISSION_AVAILABLE:
        return Rendered(
            _("%(amount)s commission is available") % {"amount": amount},
            _("Commission of %(amount)s is now available to withdraw.") % {"amount": amount},
            (amount,),
        )
    if event == Event.COMMISSION_REVERSED:
        return Rendered(
            _("%(amount)s commission reversed") % {"amount": amount},
            _("A refund took back %(amount)s of your commission.") % {"amount": amount},
            (amount,),
        )
    if event == Event.WITHDRAWAL_APPROVED:
        return Rendered(
            _("Withdrawal of %(amount)s approved") % {"amount": amount},
            _("Your withdrawal of %(amount)s was approved and will be paid soon.") % {"amount": amount},
            (amount,),
        )
    if event == Event.WITHDRAWAL_PAID:
        return Rendered(
            _("Withdrawal of %(amount)s paid") % {"amount": amount},
            _("Your withdrawal of %(amount)s has been paid.") % {"amount": amount},
            (amount,),
        )
    if event == Event.WITHDRAWAL_FAILED:
        return Rendered(
            _("Withdrawal of %(amount)s failed") % {"amount": amount},
            _("Your withdrawal of %(amount)s could not be paid (%(reason)s). The money is available again.")
            % {"amount": amount, "reason": reason or "—"},
            (amount,),
        )
    if event == Event.WITHDRAWAL_REJECTED:
        return Rendered(
            _("Withdrawal of %(amount)s rejected") % {"amount": amount},
            _("Your withdrawal of %(amount)s was rejected (%(reason)s).") % {"amount": amount, "reason": reason or "—"},
            (amount,),
        )
    if event == Event.RULES_CHANGE:
        day = formats.date_format(timezone.localtime(parse_datetime(c["effective_from"])), "DATE_FORMAT")
        if c.get("kind") == "plan":
            body = _(
                "A new commission plan takes effect on %(date)s: each level's share of a sale changes. The rules page "
                "shows what changes, with a worked example."
            )
        else:
            body = _(
                "A new version of the compliance policy takes effect on %(date)s: the caps and conditions of the "
                "commission change. The rules page shows what changes, with a worked example."
            )
        return Rendered(_("The commission rules change on %(date)s") % {"date": day}, body % {"date": day}, (day,))
    raise ValueError(f"unknown event {event!r}")
