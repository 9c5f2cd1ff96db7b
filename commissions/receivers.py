"""What commissions does when an app below it announces something: receivers of `shops.signals` and
`networks.signals`, connected once per process by CommissionsConfig.ready(). Those apps never import commissions:
their signals are the ports the ledger's keeper plugs into. A receiver only asks for work or queues it; the work is
a service a task runs."""

import logging

from django.contrib.auth.signals import user_logged_in

from commissions.services.external import external_lines_requested
from commissions.services.risk import risk_sighting_record
from commissions.services.split import commission_orders_paid
from commissions.tasks import commission_apply_refund_task
from core.client_ip import client_ip
from core.device import device_key
from core.ratelimit import ip_key
from core.task_helpers import task_send
from networks.signals import external_orders_marked
from referrals.selectors import member_for_user
from shops.signals import order_paid, refund_recorded

logger = logging.getLogger(__name__)

EXTERNAL_ORDERS_MARKED_UID = "commissions.receivers.external_orders_marked"
ORDER_PAID_UID = "commissions.receivers.order_paid"
REFUND_RECORDED_UID = "commissions.receivers.refund_recorded"
USER_LOGGED_IN_UID = "commissions.receivers.user_logged_in"


def external_orders_marked_receiver(sender=None, **_kwargs) -> None:
    """Lines were marked for the ledger and committed: ask for a run that writes them."""
    external_lines_requested()


def order_paid_receiver(sender=None, *, orders: list[tuple[int, int | None]], **_kwargs) -> None:
    """Orders were marked paid, in the transaction still open: queue their splits there (sent after the commit)."""
    commission_orders_paid(orders=orders)


def refund_recorded_receiver(sender=None, *, refund_id: int, **_kwargs) -> None:
    """A refund was committed: ask for its reversals (or, for a late payment's, to mark it applied)."""
    task_send(
        commission_apply_refund_task, refund_id, logger=logger, fallback="the commission sweep will apply the refund"
    )


def user_logged_in_receiver(sender=None, *, request=None, user=None, **_kwargs) -> None:
    """A member signed in: remember the network and device (hashed) for the fraud rules (one small write)."""
    member = member_for_user(user) if request is not None and user is not None else None
    if member is not None:
        risk_sighting_record(
            member_id=member.pk, network_key=ip_key(client_ip(request)), device_key=device_key(request)
        )


def receivers_connect() -> None:
    external_orders_marked.connect(external_orders_marked_receiver, weak=False, dispatch_uid=EXTERNAL_ORDERS_MARKED_UID)
    order_paid.connect(order_paid_receiver, weak=False, dispatch_uid=ORDER_PAID_UID)
    refund_recorded.connect(refund_recorded_receiver, weak=False, dispatch_uid=REFUND_RECORDED_UID)
    user_logged_in.connect(user_logged_in_receiver, weak=False, dispatch_uid=USER_LOGGED_IN_UID)
