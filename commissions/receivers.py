"""What commissions does when an app below it announces something: receivers of `networks.signals`, connected once
per process by CommissionsConfig.ready(). A receiver only asks for work; the work is a service a task runs."""

from commissions.services.external import external_lines_requested
from networks.signals import external_orders_marked

EXTERNAL_ORDERS_MARKED_UID = "commissions.receivers.external_orders_marked"


def external_orders_marked_receiver(sender=None, **_kwargs) -> None:
    """Lines were marked for the ledger and committed: ask for a run that writes them."""
    external_lines_requested()


def receivers_connect() -> None:
    external_orders_marked.connect(external_orders_marked_receiver, weak=False, dispatch_uid=EXTERNAL_ORDERS_MARKED_UID)
